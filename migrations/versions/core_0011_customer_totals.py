"""core: running totals per card and local month (customer lifetime value, cohort retention),
backfilled from the purchases already recorded.

Revision ID: core_0011_customer_totals
Revises: core_0008_webhook_events
Create Date: 2026-12-07 07:10:00

"""
from datetime import date
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "core_0011_customer_totals"
down_revision = "core_0010_price_items"
branch_labels = None
depends_on = None


def _month(moment, tz):
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    local = moment.astimezone(tz)
    return date(local.year, local.month, 1)


def upgrade():
    totals = op.create_table(
        "customer_month_totals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("join_month", sa.Date(), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"], name=op.f("fk_customer_month_totals_membership_id_memberships")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_customer_month_totals_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_month_totals")),
        sa.UniqueConstraint("membership_id", "month", name=op.f("uq_customer_month_totals_membership_id_month")),
    )
    op.create_index("ix_customer_month_totals_merchant_join_month", "customer_month_totals", ["merchant_id", "join_month"])

    # Backfill: months are counted where each merchant's network is (the zone is per network).
    bind = op.get_bind()
    merchants = bind.execute(sa.text(
        "SELECT merchants.id, networks.timezone FROM merchants JOIN networks ON networks.id = merchants.network_id"
    )).all()
    for merchant_id, zone_name in merchants:
        tz = ZoneInfo(zone_name or "UTC")
        months = {}
        rows = bind.execute(sa.text(
            "SELECT p.membership_id, p.created_at, p.amount, m.joined_at FROM purchases p "
            "JOIN memberships m ON m.id = p.membership_id "
            "WHERE p.merchant_id = :merchant_id AND p.refunded_at IS NULL"
        ).columns(created_at=sa.DateTime(), joined_at=sa.DateTime()), {"merchant_id": merchant_id})
        for card, created_at, amount, joined_at in rows:
            entry = months.setdefault((card, _month(created_at, tz)), [_month(joined_at, tz), 0, 0])
            entry[1] += 1
            entry[2] += amount
        values = [
            {"merchant_id": merchant_id, "membership_id": card, "month": month, "join_month": joined,
             "purchases": count, "revenue": revenue}
            for (card, month), (joined, count, revenue) in sorted(months.items())
        ]
        for start in range(0, len(values), 1000):
            op.bulk_insert(totals, values[start:start + 1000])


def downgrade():
    op.drop_index("ix_customer_month_totals_merchant_join_month", table_name="customer_month_totals")
    op.drop_table("customer_month_totals")
