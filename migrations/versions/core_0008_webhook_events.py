"""core: each merchant keeps the events its enabled webhook endpoints want, so a sale of a
merchant without subscribers asks nothing about webhooks.

Revision ID: core_0008_webhook_events
Revises: core_0007_import
Create Date: 2026-12-07 05:20:00

"""
import json

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "core_0008_webhook_events"
down_revision = "core_0007_import"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("merchants") as batch_op:
        batch_op.add_column(sa.Column("webhook_events", sa.JSON(), nullable=False, server_default="[]"))
    bind = op.get_bind()
    wanted: dict[int, set[str]] = {}
    rows = bind.execute(sa.text("SELECT merchant_id, events FROM webhook_endpoints WHERE enabled"))
    for merchant_id, events in rows:
        if isinstance(events, str):
            events = json.loads(events)
        wanted.setdefault(merchant_id, set()).update(events or ())
    merchants = sa.table("merchants", sa.column("id", sa.Integer), sa.column("webhook_events", sa.JSON))
    for merchant_id, events in wanted.items():
        bind.execute(merchants.update().where(merchants.c.id == merchant_id).values(webhook_events=sorted(events)))


def downgrade():
    with op.batch_alter_table("merchants") as batch_op:
        batch_op.drop_column("webhook_events")
