"""core: each network's time zone (IANA name), UTC for networks made before it existed.

Revision ID: core_0002_network_timezone
Revises: core_0001
Create Date: 2026-12-04 22:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "core_0002_network_timezone"
down_revision = "core_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("networks") as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC"))


def downgrade():
    with op.batch_alter_table("networks") as batch_op:
        batch_op.drop_column("timezone")
