"""surveys: a reward given by another plugin (a neighbour's certificate) besides points.

Revision ID: surveys_0002
Revises: surveys_0001
Create Date: 2026-11-23 17:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "surveys_0002"
down_revision = "surveys_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("surveys_surveys") as batch_op:
        batch_op.add_column(sa.Column("reward_option", sa.String(length=80), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reward_label", sa.String(length=200), nullable=False, server_default=""))
    with op.batch_alter_table("surveys_responses") as batch_op:
        batch_op.add_column(sa.Column("reward_option", sa.String(length=80), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reward_label", sa.String(length=200), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reward_ref", sa.String(length=80), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reward_missed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("surveys_responses") as batch_op:
        for column in ("reward_missed_at", "reward_ref", "reward_label", "reward_option"):
            batch_op.drop_column(column)
    with op.batch_alter_table("surveys_surveys") as batch_op:
        batch_op.drop_column("reward_label")
        batch_op.drop_column("reward_option")
