"""Points ledger: every balance change is one guarded UPDATE plus append-only ledger rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from flask_babel import gettext as _
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from webapp.errors import InsufficientPoints
from webapp.models import LedgerEntry, Membership, MerchantWeeklyStats
from webapp.models.base import utcnow


@dataclass(frozen=True)
class Posting:
    """A points movement to write: ``amount`` is signed (earn > 0, redeem < 0)."""

    membership_id: int
    merchant_id: int
    kind: str
    amount: int
    reason: str
    source: str = "core"
    purchase_id: int | None = None
    object_ref: str | None = None
    reverses_id: int | None = None


def week_start(moment: datetime) -> date:
    """Monday of the ISO week ``moment`` falls in (UTC)."""
    day = moment.date()
    return day - timedelta(days=day.weekday())


@lru_cache(maxsize=64)
def _weekly_upsert(dialect: str, columns: tuple[str, ...]):
    """The upsert statement for one set of columns, built once: compiling it costs more than running it."""
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = MerchantWeeklyStats.__table__
    statement = insert_fn(table).values(
        merchant_id=bindparam("merchant_id"),
        week_start=bindparam("week_start"),
        **{column: bindparam(column) for column in columns},
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.merchant_id, table.c.week_start],
        set_={column: table.c[column] + statement.excluded[column] for column in columns},
    )


def bump_weekly_stats(
    session: Session, merchant_id: int, moment: datetime, **increments: int
) -> None:
    """Add to one merchant-week row in a single upsert; never read-modify-write."""
    increments = {key: value for key, value in increments.items() if value}
    if not increments:
        return
    statement = _weekly_upsert(session.get_bind().dialect.name, tuple(sorted(increments)))
    session.execute(
        statement, {"merchant_id": merchant_id, "week_start": week_start(moment), **increments}
    )


def change_balance(session: Session, membership_id: int, delta: int) -> int:
    """Apply ``delta`` to a balance if it stays >= 0; return the new balance.

    Raises ``InsufficientPoints`` when the balance would go negative. The condition is part of
    the UPDATE, so concurrent spends of one balance can never overdraw it.
    """
    new_balance = session.execute(
        update(Membership)
        .where(Membership.id == membership_id, Membership.balance + delta >= 0)
        .values(balance=Membership.balance + delta)
        .returning(Membership.balance)
        .execution_options(synchronize_session=False)
    ).scalar()
    if new_balance is None:
        raise InsufficientPoints(_("Not enough points on the card for that."))
    return new_balance


def post(session: Session, postings: list[Posting], moment: datetime | None = None) -> None:
    """Write postings: balances change first (ascending membership id, so no deadlocks), then rows.

    For use by plugins (rewards, adjustments). Purchases use their own fused statements.
    """
    if not postings:
        return
    moment = moment or utcnow()
    totals: dict[int, int] = {}
    for posting in postings:
        totals[posting.membership_id] = totals.get(posting.membership_id, 0) + posting.amount
    for membership_id in sorted(totals):
        change_balance(session, membership_id, totals[membership_id])
    insert_entries(session, postings, moment)
    per_merchant: dict[int, int] = {}
    for posting in postings:
        per_merchant[posting.merchant_id] = per_merchant.get(posting.merchant_id, 0) + posting.amount
    for merchant_id, amount in sorted(per_merchant.items()):
        bump_weekly_stats(session, merchant_id, moment, points_other=amount)


def insert_entries(session: Session, postings: list[Posting], moment: datetime) -> None:
    """One multi-row INSERT of ledger entries."""
    session.execute(
        insert(LedgerEntry),
        [
            {
                "membership_id": p.membership_id,
                "merchant_id": p.merchant_id,
                "kind": p.kind,
                "amount": p.amount,
                "reason": p.reason[:255],
                "source": p.source,
                "purchase_id": p.purchase_id,
                "object_ref": p.object_ref,
                "reverses_id": p.reverses_id,
                "created_at": moment,
            }
            for p in postings
        ],
    )


def ledger_sum(session: Session, membership_id: int) -> int:
    """Sum of a membership's ledger; always equals its cached balance."""
    return session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.membership_id == membership_id
        )
    )


def history(session: Session, membership_id: int, limit: int = 50, offset: int = 0):
    """A membership's ledger entries, newest first."""
    return session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.membership_id == membership_id)
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()


def find_balance_mismatches(session: Session) -> list[tuple[int, int, int]]:
    """Memberships whose cached balance differs from their ledger sum (should always be empty)."""
    totals = (
        select(LedgerEntry.membership_id, func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.membership_id)
        .subquery()
    )
    rows = session.execute(
        select(Membership.id, Membership.balance, func.coalesce(totals.c.total, 0))
        .outerjoin(totals, totals.c.membership_id == Membership.id)
        .where(Membership.balance != func.coalesce(totals.c.total, 0))
    ).all()
    return [(row[0], row[1], int(row[2])) for row in rows]
