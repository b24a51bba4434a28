"""gamification: levels, statuses, badges (own branch, labelled "gamification").

Revision ID: gamification_0001
Revises:
Create Date: 2026-11-23 15:10:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "gamification_0001"
down_revision = None
branch_labels = ("gamification",)
depends_on = "core_0001"  # memberships and purchases must exist first


def upgrade():
    # Spelled out rather than built from the live models, so that a later revision adding a
    # column still finds the table as it was first created.
    op.create_table(
        "gamification_levels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("cashback_bp", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "cashback_bp >= 0 AND cashback_bp <= 10000",
            name=op.f("ck_gamification_levels_rate_in_range"),
        ),
        sa.CheckConstraint(
            "threshold >= 0", name=op.f("ck_gamification_levels_threshold_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_gamification_levels_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gamification_levels")),
        sa.UniqueConstraint(
            "merchant_id", "position", name=op.f("uq_gamification_levels_merchant_id_position")
        ),
    )
    op.create_table(
        "gamification_badges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("badge", sa.String(length=30), nullable=False),
        sa.Column("earned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_gamification_badges_membership_id_memberships"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_gamification_badges_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gamification_badges")),
        sa.UniqueConstraint(
            "membership_id", "badge", name=op.f("uq_gamification_badges_membership_id_badge")
        ),
    )
    op.create_table(
        "gamification_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("held_position", sa.Integer(), nullable=False),
        sa.Column("metric", sa.Integer(), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("level_up_purchase_id", sa.Integer(), nullable=True),
        sa.Column("level_up_seen", sa.Boolean(), nullable=False),
        sa.Column("level_up_emailed", sa.Boolean(), nullable=False),
        sa.Column("downgrade_to", sa.Integer(), nullable=True),
        sa.Column("downgrade_on", sa.Date(), nullable=True),
        sa.Column("last_downgrade_period", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(
            ["level_up_purchase_id"],
            ["purchases.id"],
            name=op.f("fk_gamification_statuses_level_up_purchase_id_purchases"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_gamification_statuses_membership_id_memberships"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_gamification_statuses_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gamification_statuses")),
        sa.UniqueConstraint("membership_id", name=op.f("uq_gamification_statuses_membership_id")),
    )
    op.create_index(
        "ix_gamification_statuses_merchant_position",
        "gamification_statuses",
        ["merchant_id", "position"],
        unique=False,
    )


def downgrade():
    op.drop_index("ix_gamification_statuses_merchant_position", table_name="gamification_statuses")
    op.drop_table("gamification_statuses")
    op.drop_table("gamification_badges")
    op.drop_table("gamification_levels")
