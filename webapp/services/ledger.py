"""Points ledger: every balance change is one guarded UPDATE plus append-only ledger rows."""

from __future__ import annotations

import json
from calendar import monthrange
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache

from flask_babel import gettext as _
from sqlalchemy import BigInteger, Integer, bindparam, case, func, insert, select, text, update
from sqlalchemy.orm import Session

from webapp import unit_of_work
from webapp.contracts import LedgerReason
from webapp.errors import InsufficientPoints
from webapp.extensions import upsert_insert
from webapp.ledger_reasons import note
from webapp.models import (
    CustomerMonthTotals,
    LedgerEntry,
    Membership,
    Merchant,
    MerchantWeeklyStats,
)
from webapp.models.base import utcnow
from webapp.timezones import merchant_zone, week_start_day


@dataclass(frozen=True)
class Posting:
    """A points movement to write: ``amount`` is signed (earn > 0, redeem < 0).

    ``reason`` says why as data (``webapp.contracts.LedgerReason``: a kind and its parameters,
    rendered in the reader's language when shown); plain text is someone's own words and is
    stored as a ``note``, shown as written.
    """

    membership_id: int
    merchant_id: int
    kind: str
    amount: int
    reason: LedgerReason | str
    source: str = "core"
    purchase_id: int | None = None
    object_ref: str | None = None
    reverses_id: int | None = None
    # Credits: when the points expire. Left as they are, a credit gets the merchant's policy of
    # the moment it is written (``credit_expiry``); ``apply_policy=False`` keeps them as given.
    expires_at: datetime | None = None
    idle_months: int | None = None
    apply_policy: bool = True


EXPIRY_MODES = ("none", "earned", "idle")


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` ``months`` calendar months later; a day the month lacks becomes its last day."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = index // 12, index % 12 + 1
    day = min(moment.day, monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def credit_expiry(merchant: Merchant, moment: datetime) -> tuple[datetime | None, int | None]:
    """(expires_at, idle months) for points a merchant credits at ``moment``, by its policy now.

    "earned": the points expire ``points_expiry_months`` after ``moment``. "idle": not before
    that either, and only once the card has gone that many months without a visit (each visit
    postpones it). Stored on the credit, so changing the policy applies to later points only.
    """
    mode = merchant.points_expiry_mode
    if mode not in ("earned", "idle"):
        return None, None
    months = merchant.points_expiry_months
    return add_months(moment, months), (months if mode == "idle" else None)


def week_start(moment: datetime, tz: tzinfo = UTC) -> date:
    """Monday of the ISO week ``moment`` falls in, counted in the network's zone ``tz``."""
    return week_start_day(moment, tz)


@lru_cache(maxsize=64)
def _weekly_upsert(dialect: str, columns: tuple[str, ...]):
    """The upsert statement for one set of columns, built once: compiling it costs more than running it."""
    insert_fn = upsert_insert(dialect)
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
    session: Session, merchant_id: int, moment: datetime, *, zone: tzinfo | None = None,
    **increments: int,
) -> None:
    """Add to one merchant-week row in a single upsert; never read-modify-write.

    The week is the one ``moment`` falls in where the merchant is (``zone``, looked up once per
    session when not given). Inside ``batched_weekly_stats`` the increments are summed and
    written once, at its end.
    """
    increments = {key: value for key, value in increments.items() if value}
    if not increments:
        return
    week = week_start(moment, zone or merchant_zone(session, merchant_id))
    pending = unit_of_work.current(session).weekly
    if pending is not None:
        totals = pending.setdefault((merchant_id, week), {})
        for key, value in increments.items():
            totals[key] = totals.get(key, 0) + value
        return
    _write_weekly(session, merchant_id, week, increments)


def _write_weekly(session: Session, merchant_id: int, week: date, increments: dict[str, int]) -> None:
    statement = _weekly_upsert(session.get_bind().dialect.name, tuple(sorted(increments)))
    session.connection().execute(
        statement, {"merchant_id": merchant_id, "week_start": week, **increments}
    )


@contextmanager
def batched_weekly_stats(session: Session) -> Iterator[None]:
    """Sum every ``bump_weekly_stats`` made inside into one upsert per merchant-week, written
    when the block ends without an error (inside the caller's transaction; no commit).

    A purchase bumps its merchant's week, and a plugin posting points in the same transaction
    bumps it again: one statement instead of two, and the hot weekly row is locked last, for the
    shortest time. On an error nothing is written (the caller rolls back).
    """
    unit = unit_of_work.current(session)
    if unit.weekly is not None:  # already batching: the outer block writes
        yield
        return
    pending: dict[tuple[int, date], dict[str, int]] = {}
    unit.weekly = pending
    try:
        yield
    finally:
        unit.weekly = None
    for (merchant_id, week), increments in sorted(pending.items()):  # one order: no deadlocks
        increments = {key: value for key, value in increments.items() if value}
        if increments:
            _write_weekly(session, merchant_id, week, increments)


def local_month(moment: datetime, tz: tzinfo) -> date:
    """The first day of the calendar month ``moment`` falls in where the street is."""
    local = moment.astimezone(tz)
    return date(local.year, local.month, 1)


@lru_cache(maxsize=4)
def _customer_month_upsert(dialect: str):
    """Add to one card-month row of ``customer_month_totals``: one statement, built once."""
    table = CustomerMonthTotals.__table__
    statement = upsert_insert(dialect)(table).values(
        merchant_id=bindparam("merchant_id"),
        membership_id=bindparam("membership_id"),
        month=bindparam("month"),
        join_month=bindparam("join_month"),
        purchases=bindparam("purchases"),
        revenue=bindparam("revenue"),
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.membership_id, table.c.month],
        set_={
            column: table.c[column] + statement.excluded[column]
            for column in ("purchases", "revenue")
        },
    )


def bump_customer_month(
    session: Session,
    merchant_id: int,
    membership_id: int,
    moment: datetime,
    joined_at: datetime,
    zone: tzinfo,
    purchases: int,
    revenue: int,
) -> None:
    """Add a sale (or, negative, its refund) to the card's month: one upsert, never a read."""
    session.connection().execute(
        _customer_month_upsert(session.get_bind().dialect.name),
        {
            "merchant_id": merchant_id,
            "membership_id": membership_id,
            "month": local_month(moment, zone),
            "join_month": local_month(joined_at, zone),
            "purchases": purchases,
            "revenue": revenue,
        },
    )


def rebuild_customer_months(session: Session, merchant_id: int | None = None) -> int:
    """Recompute ``customer_month_totals`` from the purchases (all merchants, or one); returns
    the rows written. For data recorded before the totals existed, or to check them."""
    from webapp.models import Network, Purchase

    table = CustomerMonthTotals.__table__
    merchants = select(Merchant.id, Network.timezone).join(
        Network, Network.id == Merchant.network_id
    )
    if merchant_id is not None:
        merchants = merchants.where(Merchant.id == merchant_id)
    with unit_of_work.unit_of_work(session):
        written = 0
        for found_id, zone_name in session.execute(merchants.order_by(Merchant.id)).all():
            from webapp.timezones import zone as zone_of

            tz = zone_of(zone_name)
            session.execute(table.delete().where(table.c.merchant_id == found_id))
            months: dict[tuple[int, date], list] = {}
            rows = session.execute(
                select(
                    Purchase.membership_id, Purchase.created_at, Purchase.amount, Membership.joined_at
                )
                .join(Membership, Membership.id == Purchase.membership_id)
                .where(Purchase.merchant_id == found_id, Purchase.refunded_at.is_(None))
            )
            for card, created_at, amount, joined_at in rows:
                key = (card, local_month(created_at, tz))
                entry = months.setdefault(key, [local_month(joined_at, tz), 0, 0])
                entry[1] += 1
                entry[2] += amount
            values = [
                {
                    "merchant_id": found_id,
                    "membership_id": card,
                    "month": month,
                    "join_month": joined,
                    "purchases": count,
                    "revenue": revenue,
                }
                for (card, month), (joined, count, revenue) in sorted(months.items())
            ]
            for start in range(0, len(values), 1000):
                session.execute(table.insert(), values[start : start + 1000])
            written += len(values)
    return written


def change_balance(session: Session, membership_id: int, delta: int) -> int:
    """Apply ``delta`` to a balance if it stays >= 0; return the new balance.

    Raises ``InsufficientPoints`` when the balance would go negative. The condition is part of
    the UPDATE, so concurrent spends of one balance can never overdraw it.
    """
    session.flush()  # pending ORM changes first, as the ORM's own UPDATE would
    new_balance = session.connection().execute(
        _balance_updates("any", 1), {"id_0": membership_id, "delta_0": delta}
    ).scalar()
    unit_of_work.current(session).balances_moved.add(membership_id)
    if new_balance is None:
        raise InsufficientPoints(_("Not enough points on the card for that."))
    return new_balance


@lru_cache(maxsize=32)
def _balance_updates(dialect: str, count: int):
    """One guarded UPDATE of ``count`` balances (``id_i`` gets ``delta_i``), built once.

    Every row is guarded on its own (its balance stays >= 0) and RETURNING names the rows
    changed, so a shortfall is seen. On PostgreSQL the rows are first locked in ascending id
    order (a locking subquery), like the one-UPDATE-per-card loop this replaces: concurrent
    postings to overlapping cards cannot deadlock. SQLite has one writer at a time.
    """
    table = Membership.__table__
    ids = [bindparam(f"id_{i}", type_=Integer) for i in range(count)]
    if count == 1:
        delta = bindparam("delta_0", type_=BigInteger)
        statement = update(table).where(table.c.id == ids[0], table.c.balance + delta >= 0)
    else:
        delta = case(
            *[(table.c.id == ids[i], bindparam(f"delta_{i}", type_=BigInteger)) for i in range(count)],
            else_=0,
        )
        statement = update(table).where(table.c.balance + delta >= 0)
        if dialect == "postgresql":
            locked = (
                select(table.c.id).where(table.c.id.in_(ids)).order_by(table.c.id)
                .with_for_update().correlate(None).subquery("locked")
            )
            statement = statement.where(table.c.id == locked.c.id)
        else:
            statement = statement.where(table.c.id.in_(ids))
    return statement.values(balance=table.c.balance + delta).returning(table.c.balance, table.c.id)


MANY_CARDS = 8

# Beyond a few cards the changes travel as one parameter (an array, or JSON on SQLite) joined in
# the UPDATE: one statement of fixed text whatever the number of cards, so a nightly job posting
# to thousands of cards neither compiles nor ships a statement per card. Guarded per row and
# RETURNING the rows changed, like the CASE statement; on PostgreSQL the rows are locked first
# in ascending id order.
_MANY_UPDATES = {
    "postgresql": text(
        "WITH locked AS (SELECT id FROM memberships WHERE id = ANY(CAST(:ids AS integer[])) "
        "ORDER BY id FOR UPDATE) "
        "UPDATE memberships AS m SET balance = m.balance + v.delta "
        "FROM unnest(CAST(:ids AS integer[]), CAST(:deltas AS bigint[])) AS v(id, delta) "
        "WHERE m.id = v.id AND m.id IN (SELECT id FROM locked) AND m.balance + v.delta >= 0 "
        "RETURNING m.balance, m.id"
    ),
    "sqlite": text(
        "UPDATE memberships SET balance = memberships.balance + v.delta "
        "FROM (SELECT CAST(json_extract(value, '$[0]') AS INTEGER) AS id, "
        "CAST(json_extract(value, '$[1]') AS INTEGER) AS delta FROM json_each(:pairs)) AS v "
        "WHERE memberships.id = v.id AND memberships.balance + v.delta >= 0 "
        "RETURNING memberships.balance, memberships.id"
    ),
}


def _apply_balances(session: Session, deltas: list[tuple[int, int]]) -> list[int]:
    """Run the guarded UPDATE for (membership id, delta) pairs; return the ids it changed."""
    unit_of_work.current(session).balances_moved.update(card for card, _delta in deltas)
    if len(deltas) > MANY_CARDS:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            params = {"ids": [card for card, _delta in deltas], "deltas": [delta for _card, delta in deltas]}
        else:
            params = {"pairs": json.dumps(deltas)}
        rows = session.connection().execute(_MANY_UPDATES[dialect], params)
        return [row[1] for row in rows]
    dialect = session.get_bind().dialect.name if len(deltas) > 1 else "any"
    params: dict[str, int] = {}
    for index, (membership_id, delta) in enumerate(deltas):
        params[f"id_{index}"] = membership_id
        params[f"delta_{index}"] = delta
    rows = session.connection().execute(_balance_updates(dialect, len(deltas)), params)
    return [row[1] for row in rows]


def change_balances(session: Session, totals: dict[int, int]) -> None:
    """Apply several balance changes (membership id -> delta) in one guarded statement, or none.

    Raises ``InsufficientPoints`` when any balance would go negative; the cards the statement
    did change are changed back first (their rows are still locked by this transaction), so a
    refusal leaves every balance as it was.
    """
    deltas = sorted((membership_id, delta) for membership_id, delta in totals.items() if delta)
    if not deltas:
        return
    session.flush()  # pending ORM changes first, as the ORM's own UPDATE would
    changed = _apply_balances(session, deltas)
    if len(changed) == len(deltas):
        return
    if changed:
        _apply_balances(session, sorted((membership_id, -totals[membership_id]) for membership_id in changed))
    raise InsufficientPoints(_("Not enough points on the card for that."))


def post(session: Session, postings: list[Posting], moment: datetime | None = None) -> None:
    """Write postings: balances change first (one guarded statement, locking cards in ascending
    id order), then the ledger rows (one INSERT), then the merchants' weekly figures.

    For use by plugins (rewards, adjustments). Purchases use their own fused statements.
    """
    if not postings:
        return
    moment = moment or utcnow()
    totals: dict[int, int] = {}
    for posting in postings:
        totals[posting.membership_id] = totals.get(posting.membership_id, 0) + posting.amount
    change_balances(session, totals)
    insert_entries(session, postings, moment)
    per_merchant: dict[int, int] = {}
    for posting in postings:
        per_merchant[posting.merchant_id] = per_merchant.get(posting.merchant_id, 0) + posting.amount
    for merchant_id, amount in sorted(per_merchant.items()):
        bump_weekly_stats(session, merchant_id, moment, points_other=amount)


def _expiry_of(session: Session, posting: Posting, moment: datetime) -> tuple[datetime | None, int | None]:
    if posting.amount <= 0:
        return None, None
    if not posting.apply_policy or posting.expires_at is not None or posting.idle_months is not None:
        return posting.expires_at, posting.idle_months
    merchant = session.get(Merchant, posting.merchant_id)  # the session's own copy, when loaded
    return credit_expiry(merchant, moment) if merchant is not None else (None, None)


def insert_entries(session: Session, postings: list[Posting], moment: datetime) -> None:
    """One multi-row INSERT of ledger entries (a Core insert on the session's connection).

    Credits carry their expiry (``Posting.expires_at``, else the merchant's policy now).
    Inside ``batched_postings`` the rows wait for the block's end and go in with the others.
    """
    expiries = [_expiry_of(session, p, moment) for p in postings]
    reasons = [p.reason if isinstance(p.reason, LedgerReason) else note(p.reason) for p in postings]
    rows = [
        {
            "membership_id": p.membership_id,
            "merchant_id": p.merchant_id,
            "kind": p.kind,
            "amount": p.amount,
            "reason_kind": reason.kind,
            "reason_params": dict(reason.params),
            "source": p.source,
            "purchase_id": p.purchase_id,
            "object_ref": p.object_ref,
            "reverses_id": p.reverses_id,
            "created_at": moment,
            "expires_at": expires_at,
            "expiry_idle_months": idle_months,
        }
        for p, reason, (expires_at, idle_months) in zip(postings, reasons, expiries, strict=True)
    ]
    pending = unit_of_work.current(session).ledger_rows
    if pending is not None:
        pending.extend(rows)  # the sale's and its plugins' rows: one INSERT at the end for all
        return
    _write_entries(session, rows)


def _write_entries(session: Session, rows: list[dict]) -> None:
    session.flush()  # pending ORM changes first, as the ORM's bulk insert would
    session.connection().execute(_LEDGER_INSERT, rows)


@contextmanager
def batched_postings(session: Session) -> Iterator[None]:
    """Ledger rows and weekly figures written inside go in when the block ends without an error:
    one INSERT for every ledger row (the sale's and those its plugins post) and one upsert per
    merchant-week (``batched_weekly_stats``). Balances still change at once, each by its guarded
    UPDATE; nothing written inside reads the ledger rows back. On an error nothing is written.
    """
    unit = unit_of_work.current(session)
    if unit.ledger_rows is not None:  # already batching: the outer block writes
        yield
        return
    rows: list[dict] = []
    unit.ledger_rows = rows
    try:
        with batched_weekly_stats(session):
            yield
            unit.ledger_rows = None
            if rows:
                _write_entries(session, rows)
    finally:
        unit.ledger_rows = None


_LEDGER_INSERT = insert(LedgerEntry.__table__)


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
