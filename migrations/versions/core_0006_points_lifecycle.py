"""core: points lifecycle: welcome and birthday bonuses, expiry of credits, reminders, adjustments.

Revision ID: core_0006_points_lifecycle
Revises: core_0005_webhooks
Create Date: 2026-12-07 03:40:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'core_0006_points_lifecycle'
down_revision = 'core_0005_webhooks'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("merchants") as batch_op:
        batch_op.add_column(sa.Column("welcome_bonus_points", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("birthday_bonus_points", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("birthday_bonus_days", sa.Integer(), nullable=False, server_default="30"))
        batch_op.add_column(sa.Column("points_expiry_mode", sa.String(length=10), nullable=False, server_default="none"))
        batch_op.add_column(sa.Column("points_expiry_months", sa.Integer(), nullable=False, server_default="12"))
        batch_op.create_check_constraint(
            "bonuses_range",
            "welcome_bonus_points >= 0 AND birthday_bonus_points >= 0 AND birthday_bonus_days > 0",
        )
        batch_op.create_check_constraint("expiry_mode_known", "points_expiry_mode IN ('none', 'earned', 'idle')")
        batch_op.create_check_constraint(
            "expiry_months_range", "points_expiry_months >= 1 AND points_expiry_months <= 120"
        )
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("birth_day", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("birth_month", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("birth_year", sa.SmallInteger(), nullable=True))
        batch_op.create_check_constraint(
            "birthday_valid",
            "(birth_day IS NULL AND birth_month IS NULL AND birth_year IS NULL) OR "
            "(birth_day BETWEEN 1 AND 31 AND birth_month BETWEEN 1 AND 12)",
        )
        batch_op.create_index("ix_users_birthday", ["birth_month", "birth_day"])
    with op.batch_alter_table("ledger_entries") as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("expiry_idle_months", sa.SmallInteger(), nullable=True))
    op.create_table(
        "points_adjustments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount <> 0", name="amount_not_zero"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"]),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("merchant_id", "idempotency_key"),
    )
    op.create_index("ix_points_adjustments_membership_id", "points_adjustments", ["membership_id"])
    op.create_table(
        "welcome_bonus_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("identity_hash", sa.String(length=64), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"]),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("merchant_id", "identity_hash"),
    )
    op.create_table(
        "birthday_bonuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("membership_id", "year"),
    )
    op.create_table(
        "expiry_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("days_before", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("membership_id", "expires_on", "days_before"),
    )


def downgrade():
    op.drop_table("expiry_reminders")
    op.drop_table("birthday_bonuses")
    op.drop_table("welcome_bonus_claims")
    op.drop_index("ix_points_adjustments_membership_id", table_name="points_adjustments")
    op.drop_table("points_adjustments")
    with op.batch_alter_table("ledger_entries") as batch_op:
        batch_op.drop_column("expiry_idle_months")
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_index("ix_users_birthday")
        batch_op.drop_constraint("birthday_valid", type_="check")
        batch_op.drop_column("birth_year")
        batch_op.drop_column("birth_month")
        batch_op.drop_column("birth_day")
    with op.batch_alter_table("merchants") as batch_op:
        batch_op.drop_constraint("expiry_months_range", type_="check")
        batch_op.drop_constraint("expiry_mode_known", type_="check")
        batch_op.drop_constraint("bonuses_range", type_="check")
        batch_op.drop_column("points_expiry_months")
        batch_op.drop_column("points_expiry_mode")
        batch_op.drop_column("birthday_bonus_days")
        batch_op.drop_column("birthday_bonus_points")
        batch_op.drop_column("welcome_bonus_points")
