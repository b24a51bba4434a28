"""core: each network's time zone (IANA name), UTC for networks made before it existed.

Revision ID: core_0004
Revises: core_0003_api_keys
Create Date: 2026-12-04 22:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'core_0004'
down_revision = 'core_0003_api_keys'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("networks") as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC"))


def downgrade():
    with op.batch_alter_table("networks") as batch_op:
        batch_op.drop_column("timezone")
