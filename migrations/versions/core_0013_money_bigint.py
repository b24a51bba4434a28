"""core: money in minor units and points become 64-bit (``bigint``) on PostgreSQL.

A bill may be up to ``MAX_AMOUNT`` (10**12 minor units) and a week's or a card's sums grow past
2**31 (about 21 million tenge, or 1,700 dollars in so'm); PostgreSQL's ``integer`` refused them.
SQLite keeps every integer in up to 64 bits already, so nothing changes there.

Revision ID: core_0013_money_bigint
Revises: core_0012_purchase_items
Create Date: 2026-12-07 13:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "core_0013_money_bigint"
down_revision = "core_0012_purchase_items"
branch_labels = None
depends_on = None

# (table, column, nullable)
COLUMNS = [
    ("memberships", "balance", False),
    ("memberships", "total_spent", False),
    ("purchases", "amount", False),
    ("purchases", "points_used", False),
    ("purchases", "points_value", False),
    ("purchases", "certificate_value_used", False),
    ("purchases", "discount", False),
    ("purchases", "amount_paid", False),
    ("purchases", "points_earned", False),
    ("purchase_items", "unit_price", False),
    ("ledger_entries", "amount", False),
    ("merchant_weekly_stats", "revenue", False),
    ("merchant_weekly_stats", "amount_paid", False),
    ("merchant_weekly_stats", "points_earned", False),
    ("merchant_weekly_stats", "points_redeemed", False),
    ("merchant_weekly_stats", "points_other", False),
    ("customer_month_totals", "revenue", False),
    ("points_adjustments", "amount", False),
    ("expiry_reminders", "points", False),
    ("price_items", "price", False),
    ("customer_imports", "points_imported", False),
]


def _retype(new_type, old_type) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(table, column, type_=new_type, existing_type=old_type, existing_nullable=nullable)


def upgrade():
    _retype(sa.BigInteger(), sa.Integer())


def downgrade():
    # Fails where a value no longer fits in 32 bits: such a database cannot go back.
    _retype(sa.Integer(), sa.BigInteger())
