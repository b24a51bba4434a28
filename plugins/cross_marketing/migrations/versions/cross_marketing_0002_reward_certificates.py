"""cross_marketing: certificates given as rewards (no purchase; a reason instead).

Revision ID: cross_marketing_0002
Revises: cross_marketing_0001
Create Date: 2026-11-23 17:20:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "cross_marketing_0002"
down_revision = "cross_marketing_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cross_marketing_certificates") as batch_op:
        batch_op.add_column(sa.Column("issued_reason", sa.String(length=200), nullable=False, server_default=""))
        batch_op.alter_column("issued_purchase_id", existing_type=sa.Integer(), nullable=True)


def downgrade():
    with op.batch_alter_table("cross_marketing_certificates") as batch_op:
        batch_op.alter_column("issued_purchase_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("issued_reason")
