"""core: ledger rows say why points moved as data (a reason kind and its parameters), rendered in
the reader's language, instead of an English sentence.

The sentences the core wrote are parsed once, here (the only place these patterns live); any
other text (a plugin's sentence, an owner's note) becomes a ``note`` that keeps it as written.

Revision ID: core_0009_ledger_reason_kinds
Revises: core_0008_webhook_events
Create Date: 2026-12-07 07:00:00

"""
import json
import re
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "core_0009_ledger_reason_kinds"
down_revision = "core_0008_webhook_events"
branch_labels = None
depends_on = None

BATCH = 2000

# The sentences the core wrote before this revision, and the kind each becomes.
_PATTERNS = (
    (re.compile(r"Paid with points, purchase #(\d+)"), lambda m: ("redeem", {"purchase": int(m[1])})),
    (re.compile(r"Points expired"), lambda m: ("expired", {})),
    (re.compile(r"Welcome bonus"), lambda m: ("welcome", {})),
    (re.compile(r"Birthday bonus (\d{4})"), lambda m: ("birthday", {"year": int(m[1])})),
    (re.compile(r"Imported from the previous program"), lambda m: ("imported", {})),
)
_CASHBACK = re.compile(r"Cashback (\d+(?:\.\d+)?)% on purchase #(\d+)")
_REFUND = re.compile(r"Refund of purchase #(\d+): (.*)", re.DOTALL)


def parse_reason(text):
    """(kind, params) of an old reason sentence; text that is not the core's becomes a note."""
    text = text or ""
    refund = _REFUND.fullmatch(text)
    if refund:
        kind, params = parse_reason(refund[2])
        return "refund", {"purchase": int(refund[1]), "reversed": {"kind": kind, "params": params}}
    cashback = _CASHBACK.fullmatch(text)
    if cashback:
        try:
            rate = Decimal(cashback[1]).scaleb(2)
        except InvalidOperation:
            rate = None
        if rate is not None and rate == rate.to_integral_value():
            return "cashback", {"purchase": int(cashback[2]), "rate_bp": int(rate)}
    for pattern, convert in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return convert(match)
    return "note", {"text": text}


def upgrade():
    with op.batch_alter_table("ledger_entries") as batch_op:
        batch_op.add_column(sa.Column("reason_kind", sa.String(length=40), nullable=False, server_default="note"))
        batch_op.add_column(sa.Column("reason_params", sa.JSON(), nullable=False, server_default="{}"))
    bind = op.get_bind()
    entries = sa.table(
        "ledger_entries", sa.column("id", sa.Integer), sa.column("reason", sa.String),
        sa.column("reason_kind", sa.String), sa.column("reason_params", sa.JSON),
    )
    change = (
        sa.update(entries).where(entries.c.id == sa.bindparam("b_id"))
        .values(reason_kind=sa.bindparam("b_kind"), reason_params=sa.bindparam("b_params", type_=sa.JSON))
    )
    last_id = 0
    while True:  # in batches by id, so a large ledger never sits in memory at once
        rows = bind.execute(
            sa.select(entries.c.id, entries.c.reason).where(entries.c.id > last_id)
            .order_by(entries.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        last_id = rows[-1][0]
        updates = []
        for entry_id, reason in rows:
            kind, params = parse_reason(reason)
            updates.append({"b_id": entry_id, "b_kind": kind, "b_params": params})
        bind.execute(change, updates)
    with op.batch_alter_table("ledger_entries") as batch_op:
        batch_op.drop_column("reason")


def downgrade():
    # The sentences are not written back: a row keeps its kind's name, a note its text.
    with op.batch_alter_table("ledger_entries") as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=255), nullable=False, server_default=""))
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE ledger_entries SET reason = reason_kind"))
    rows = bind.execute(sa.text("SELECT id, reason_params FROM ledger_entries WHERE reason_kind = 'note'"))
    for entry_id, params in rows.all():
        if isinstance(params, str):
            params = json.loads(params)
        bind.execute(
            sa.text("UPDATE ledger_entries SET reason = :reason WHERE id = :id"),
            {"reason": str((params or {}).get("text", ""))[:255], "id": entry_id},
        )
    with op.batch_alter_table("ledger_entries") as batch_op:
        batch_op.drop_column("reason_params")
        batch_op.drop_column("reason_kind")
