"""core: the lines of a sale picked from the price list (``purchase_items``): name and unit price
copied at sale time, the link to the price-list item set to NULL when the item is deleted.

Revision ID: core_0012_purchase_items
Revises: core_0011_customer_totals
Create Date: 2026-12-07 08:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "core_0012_purchase_items"
down_revision = "core_0011_customer_totals"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "purchase_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("price_item_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "unit_price >= 0", name=op.f("ck_purchase_items_unit_price_not_negative")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_purchase_items_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name=op.f("fk_purchase_items_purchase_id_purchases")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_purchase_items_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["price_item_id"],
            ["price_items.id"],
            name=op.f("fk_purchase_items_price_item_id_price_items"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_items")),
    )
    op.create_index(
        op.f("ix_purchase_items_purchase_id"), "purchase_items", ["purchase_id"], unique=False
    )
    op.create_index(
        "ix_purchase_items_merchant_item",
        "purchase_items",
        ["merchant_id", "price_item_id"],
        unique=False,
    )


def downgrade():
    op.drop_index("ix_purchase_items_merchant_item", table_name="purchase_items")
    op.drop_index(op.f("ix_purchase_items_purchase_id"), table_name="purchase_items")
    op.drop_table("purchase_items")
