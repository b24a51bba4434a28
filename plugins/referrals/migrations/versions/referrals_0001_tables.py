"""referrals: codes, link opens, links, rewards, monthly totals (own branch, labelled "referrals").

Revision ID: referrals_0001
Revises:
Create Date: 2026-11-23 15:10:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "referrals_0001"
down_revision = None
branch_labels = ("referrals",)
depends_on = "core_0001"  # memberships and purchases must exist first


def upgrade():
    # Spelled out rather than built from the live models, so that a later revision adding a
    # column still finds the table as it was first created.
    op.create_table(
        "referrals_opens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=24), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_referrals_opens_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals_opens")),
    )
    op.create_index(
        "ix_referrals_opens_merchant_opened",
        "referrals_opens",
        ["merchant_id", "opened_at"],
        unique=False,
    )
    op.create_table(
        "referrals_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_referrals_codes_membership_id_memberships"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_referrals_codes_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_referrals_codes_code")),
        sa.UniqueConstraint("membership_id", name=op.f("uq_referrals_codes_membership_id")),
    )
    op.create_table(
        "referrals_monthly_totals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("last_granted", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "total >= 0", name=op.f("ck_referrals_monthly_totals_total_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_referrals_monthly_totals_membership_id_memberships"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals_monthly_totals")),
        sa.UniqueConstraint(
            "membership_id", "month", name=op.f("uq_referrals_monthly_totals_membership_id_month")
        ),
    )
    op.create_table(
        "referrals_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("referrer_membership_id", sa.Integer(), nullable=False),
        sa.Column("referee_membership_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("signup_bonus_purchase_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'held', 'rejected')", name=op.f("ck_referrals_links_status_known")
        ),
        sa.CheckConstraint(
            "referrer_membership_id <> referee_membership_id",
            name=op.f("ck_referrals_links_not_self"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_referrals_links_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["referee_membership_id"],
            ["memberships.id"],
            name=op.f("fk_referrals_links_referee_membership_id_memberships"),
        ),
        sa.ForeignKeyConstraint(
            ["referrer_membership_id"],
            ["memberships.id"],
            name=op.f("fk_referrals_links_referrer_membership_id_memberships"),
        ),
        sa.ForeignKeyConstraint(
            ["signup_bonus_purchase_id"],
            ["purchases.id"],
            name=op.f("fk_referrals_links_signup_bonus_purchase_id_purchases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals_links")),
        sa.UniqueConstraint(
            "referee_membership_id", name=op.f("uq_referrals_links_referee_membership_id")
        ),
    )
    op.create_index(
        "ix_referrals_links_merchant_ip_created",
        "referrals_links",
        ["merchant_id", "ip", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_referrals_links_referrer_membership_id"),
        "referrals_links",
        ["referrer_membership_id"],
        unique=False,
    )
    op.create_table(
        "referrals_rewards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("beneficiary_membership_id", sa.Integer(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_referrals_rewards_amount_not_negative")),
        sa.CheckConstraint(
            "depth >= 0 AND depth <= 3", name=op.f("ck_referrals_rewards_depth_at_most_3")
        ),
        sa.ForeignKeyConstraint(
            ["beneficiary_membership_id"],
            ["memberships.id"],
            name=op.f("fk_referrals_rewards_beneficiary_membership_id_memberships"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_referrals_rewards_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchases.id"],
            name=op.f("fk_referrals_rewards_purchase_id_purchases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals_rewards")),
        sa.UniqueConstraint(
            "purchase_id",
            "beneficiary_membership_id",
            "depth",
            name=op.f("uq_referrals_rewards_purchase_id_beneficiary_membership_id_depth"),
        ),
    )
    op.create_index(
        op.f("ix_referrals_rewards_beneficiary_membership_id"),
        "referrals_rewards",
        ["beneficiary_membership_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_referrals_rewards_merchant_id"), "referrals_rewards", ["merchant_id"], unique=False
    )


def downgrade():
    op.drop_index("ix_referrals_rewards_merchant_id", table_name="referrals_rewards")
    op.drop_index("ix_referrals_rewards_beneficiary_membership_id", table_name="referrals_rewards")
    op.drop_index("ix_referrals_links_referrer_membership_id", table_name="referrals_links")
    op.drop_index("ix_referrals_links_merchant_ip_created", table_name="referrals_links")
    op.drop_index("ix_referrals_opens_merchant_opened", table_name="referrals_opens")
    op.drop_table("referrals_rewards")
    op.drop_table("referrals_links")
    op.drop_table("referrals_monthly_totals")
    op.drop_table("referrals_codes")
    op.drop_table("referrals_opens")
