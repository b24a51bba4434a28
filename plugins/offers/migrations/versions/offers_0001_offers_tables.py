"""offers: offers, their recipients (control group included) and claims.

The plugin's own Alembic branch, labelled "offers".

Revision ID: offers_0001
Revises:
Create Date: 2026-12-07 07:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "offers_0001"
down_revision = None
branch_labels = ("offers",)
depends_on = "core_0001"  # merchants, users and memberships must exist first

TZ = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "offers_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reward_key", sa.String(length=80), nullable=True),
        sa.Column("reward_label", sa.String(length=200), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("segment_hash", sa.String(length=64), nullable=False),
        sa.Column("control_percent", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("control", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", TZ, nullable=False),
        sa.Column("form_key", sa.String(length=80), nullable=True),
        sa.CheckConstraint("kind IN ('points', 'certificate', 'message')", name=op.f("ck_offers_offers_kind_known")),
        sa.CheckConstraint("points >= 0", name=op.f("ck_offers_offers_points_not_negative")),
        sa.CheckConstraint("control_percent >= 0 AND control_percent <= 50", name=op.f("ck_offers_offers_control_share")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_offers_offers_created_by_id_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_offers_offers_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers_offers")),
        sa.UniqueConstraint("merchant_id", "form_key", name=op.f("uq_offers_offers_merchant_id_form_key")),
    )
    op.create_index("ix_offers_offers_merchant_sent", "offers_offers", ["merchant_id", "sent_at"])
    op.create_table(
        "offers_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("in_control", sa.Boolean(), nullable=False),
        sa.Column("opened_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"], name=op.f("fk_offers_recipients_membership_id_memberships")),
        sa.ForeignKeyConstraint(["offer_id"], ["offers_offers.id"], name=op.f("fk_offers_recipients_offer_id_offers_offers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers_recipients")),
        sa.UniqueConstraint("offer_id", "membership_id", name=op.f("uq_offers_recipients_offer_id_membership_id")),
    )
    op.create_index("ix_offers_recipients_membership", "offers_recipients", ["membership_id"])
    op.create_table(
        "offers_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("reward_ref", sa.String(length=120), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"], name=op.f("fk_offers_claims_membership_id_memberships")),
        sa.ForeignKeyConstraint(["offer_id"], ["offers_offers.id"], name=op.f("fk_offers_claims_offer_id_offers_offers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers_claims")),
        sa.UniqueConstraint("offer_id", "membership_id", name=op.f("uq_offers_claims_offer_id_membership_id")),
    )


def downgrade():
    op.drop_table("offers_claims")
    op.drop_index("ix_offers_recipients_membership", table_name="offers_recipients")
    op.drop_table("offers_recipients")
    op.drop_index("ix_offers_offers_merchant_sent", table_name="offers_offers")
    op.drop_table("offers_offers")
