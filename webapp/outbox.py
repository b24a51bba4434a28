"""Transactional outbox: follow-up work is written in the transaction that causes it, then delivered.

A sale, a new member or a refund writes its after-commit work (plugins' ``*_committed`` hooks,
e-mails, webhooks) as ``outbox_messages`` rows in its own transaction, so the work exists exactly
when the event does: a queue that is down, slow or lost, or a process killed right after the commit,
loses nothing. After the commit the rows are handed to the task queue at once (best effort, never
failing the request); a periodic relay in the worker hands over whatever is still due. A worker
claims a row with a lease, runs its handler and marks it done in the handler's own transaction, so
the database effects of a handler happen once; a failure is retried with backoff and, after its
attempts, kept as failed for the operator to see. Delivery is at least once: handlers with effects
outside the database (SMTP, HTTP) must tolerate a rare repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flask import current_app, has_app_context
from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from webapp import unit_of_work
from webapp.models.base import utcnow
from webapp.models.outbox import OutboxMessage

if TYPE_CHECKING:
    from webapp.models import Merchant

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # a worker that died holding a message loses it after this
RELAY_GRACE = timedelta(seconds=30)  # fresh rows are handed over by their own request first
RELAY_AGAIN_AFTER = timedelta(minutes=5)  # handed over but not run since: the queue lost it
KEEP_DONE = timedelta(days=7)
RELAY_BATCH = 500


def default_backoff(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: 30 s, 1 min, 2 min ... at most an hour."""
    return float(min(30 * 2 ** (attempt - 1), 3600))


@dataclass(frozen=True)
class Handler:
    kind: str
    function: Callable[[dict[str, Any]], None]
    max_attempts: int
    backoff: Callable[[int], float]


HANDLERS: dict[str, Handler] = {}


def handler(
    kind: str, *, max_attempts: int = 8, backoff: Callable[[int], float] = default_backoff
) -> Callable[[Callable[[dict[str, Any]], None]], Callable[[dict[str, Any]], None]]:
    """Register the function that runs outbox rows of ``kind``.

    It is called with the row's payload in an app context; it works in ``db.session`` and leaves the
    commit to the runner, which marks the row done in the same transaction. Raising rolls its work
    back and schedules another attempt after ``backoff(attempts so far)`` seconds.
    """

    def register(function: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        HANDLERS[kind] = Handler(kind, function, max_attempts, backoff)
        return function

    return register


# --------------------------------------------------------------------------- writing


def add(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    merchant_id: int | None = None,
    delay: float = 0.0,
) -> None:
    """Write one message in the caller's transaction; it is delivered after the commit."""
    add_many(session, [(kind, payload)], merchant_id=merchant_id, delay=delay)


def add_many(
    session: Session,
    messages: list[tuple[str, dict[str, Any]]],
    *,
    merchant_id: int | None = None,
    delay: float = 0.0,
) -> None:
    """Write several messages with one INSERT (a sale's plugins each get their own row).

    Inside ``batched`` they wait for the block's end and go in with the block's other messages.
    """
    if not messages:
        return
    now = utcnow()
    due = now + timedelta(seconds=delay)
    rows = [
        {
            "kind": kind, "payload": payload, "merchant_id": merchant_id, "created_at": now,
            "due_at": due, "attempts": 0,
        }
        for kind, payload in messages
    ]
    waiting = unit_of_work.current(session).outbox_batch
    if waiting is not None:
        waiting.extend((row, delay) for row in rows)  # one INSERT at the block's end for all
        return
    _insert(session, rows, [delay] * len(rows))


def _insert(session: Session, rows: list[dict[str, Any]], delays: list[float]) -> None:
    table = OutboxMessage.__table__
    ids = session.execute(insert(table).returning(table.c.id), rows).scalars().all()
    # Handed to the task queue when the transaction commits (``webapp.unit_of_work``).
    unit_of_work.current(session).outbox_written.extend(zip(ids, delays, strict=True))


@contextmanager
def batched(session: Session) -> Iterator[None]:
    """Write every message added inside with one INSERT when the block ends without an error
    (in the caller's transaction; no commit). On an error nothing is written."""
    unit = unit_of_work.current(session)
    if unit.outbox_batch is not None:  # already batching: the outer block writes
        yield
        return
    waiting: list[tuple[dict[str, Any], float]] = []
    unit.outbox_batch = waiting
    try:
        yield
    finally:
        unit.outbox_batch = None
    if waiting:
        _insert(session, [row for row, _delay in waiting], [delay for _row, delay in waiting])


def record_event(session: Session, merchant: Merchant, event_name: str, data: dict[str, Any]) -> None:
    """Announce a domain event (``purchase.recorded`` ...) inside its transaction.

    Implementations of ``neighbourly_event_recorded`` (webhooks) write their outbox rows here, so an
    event is delivered exactly when its transaction commits.
    """
    from webapp.plugins import hooks_for

    hooks_for(merchant).neighbourly_event_recorded(
        merchant=merchant, event=event_name, data=data, session=session
    )


def uncommitted(session: Session) -> int:
    """Messages written in the session's transaction and not committed yet (for checks)."""
    unit = unit_of_work.existing(session)
    return len(unit.outbox_written) if unit is not None else 0


def hand_over(pending: list[tuple[int, float]]) -> bool:
    """Give committed rows to the task queue now; never raises (the relay catches up later)."""
    from webapp import tasks

    if not has_app_context():  # a session used outside the app (scripts): the relay hands them over
        return False
    now_ids = [message_id for message_id, delay in pending if delay <= 0]
    try:
        if now_ids:
            tasks.run_outbox_messages(now_ids)
        for message_id, delay in pending:
            if delay > 0:
                tasks.run_outbox_messages.schedule(args=([message_id],), delay=delay)
    except Exception as error:  # noqa: BLE001 - the rows are safe in the database
        log.warning(
            "task queue unavailable (%s): %d follow-up messages wait in the outbox",
            error.__class__.__name__, len(pending),
        )
        return False
    return True


# --------------------------------------------------------------------------- running


def run_message(session: Session, message_id: int, now: datetime | None = None) -> bool:
    """Claim, run and complete one message; ``True`` when this call completed it.

    Nothing happens for a message that is done, failed, not due yet, or held by another worker.
    """
    now = now or utcnow()
    lease_until = now + LEASE
    table = OutboxMessage.__table__
    claimed = session.execute(
        update(table)
        .where(
            table.c.id == message_id,
            table.c.done_at.is_(None),
            table.c.failed_at.is_(None),
            table.c.due_at <= now,
            or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
        )
        .values(claimed_until=lease_until, attempts=table.c.attempts + 1)
        .returning(table.c.kind, table.c.payload, table.c.attempts)
    ).first()
    session.commit()
    if claimed is None:
        return False
    found = HANDLERS.get(claimed.kind)
    try:
        # The handler's work and the row's completion are one unit of work: services the handler
        # calls join it (their blocks do not commit early), so a retry never repeats committed work.
        with unit_of_work.unit_of_work(session):
            if found is None:
                raise LookupError(f"no outbox handler for {claimed.kind!r} in this process")
            found.function(dict(claimed.payload or {}))
            # Done only while the lease is still ours: a worker that took a lapsed lease over
            # runs it instead, and this one's work is rolled back.
            completed = session.execute(
                update(table)
                .where(table.c.id == message_id, table.c.done_at.is_(None),
                       table.c.claimed_until == lease_until)
                .values(done_at=utcnow(), claimed_until=None, last_error=None)
            ).rowcount
            if completed != 1:
                raise _LeaseLost
        return True
    except _LeaseLost:
        return False
    except Exception as error:  # noqa: BLE001 - isolated: logged, retried, never raised to callers
        log.exception("outbox message %s (%s) failed on attempt %s", message_id, claimed.kind, claimed.attempts)
        _record_failure(session, message_id, found, claimed.attempts, error)
        return False


class _LeaseLost(Exception):
    """Another worker took the message's lapsed lease over; this run's work is rolled back."""


def _record_failure(
    session: Session, message_id: int, found: Handler | None, attempts: int, error: Exception
) -> None:
    table = OutboxMessage.__table__
    max_attempts = found.max_attempts if found else 8
    delay = (found.backoff if found else default_backoff)(attempts)
    now = utcnow()
    values: dict[str, Any] = {"claimed_until": None, "last_error": f"{error.__class__.__name__}: {error}"[:500]}
    if attempts >= max_attempts:
        values["failed_at"] = now
    else:
        values["due_at"] = now + timedelta(seconds=delay)
        values["relayed_at"] = None
    session.execute(update(table).where(table.c.id == message_id).values(**values))
    session.commit()
    if attempts < max_attempts:
        hand_over([(message_id, delay)])


def relay_due(session: Session, now: datetime | None = None, run_here: bool = False) -> int:
    """Hand every due message that no request or worker has taken care of to the queue.

    The worker's periodic job; with ``run_here`` (``flask outbox run``) they run in this process
    instead. Returns the number of messages handed over (or completed, when run here).
    """
    now = now or utcnow()
    grace = RELAY_GRACE
    if has_app_context():
        grace = timedelta(seconds=current_app.config.get("OUTBOX_RELAY_GRACE_SECONDS", 30))
    table = OutboxMessage.__table__
    ids = session.scalars(
        select(table.c.id)
        .where(
            table.c.done_at.is_(None),
            table.c.failed_at.is_(None),
            table.c.due_at <= now,
            or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
            or_(
                (table.c.relayed_at.is_(None)) & (table.c.created_at <= now - grace),
                table.c.relayed_at <= now - RELAY_AGAIN_AFTER,
            ),
        )
        .order_by(table.c.id)
        .limit(RELAY_BATCH)
    ).all()
    session.commit()
    if not ids:
        return 0
    if run_here:
        return sum(run_message(session, message_id, now) for message_id in ids)
    from webapp import tasks

    tasks.run_outbox_messages(list(ids))  # raises when the queue is down: the rows stay as they are
    session.execute(update(table).where(table.c.id.in_(ids)).values(relayed_at=now))
    session.commit()
    return len(ids)


def purge_done(session: Session, now: datetime | None = None) -> int:
    """Delete messages completed more than a week ago (failed ones stay for the operator)."""
    now = now or utcnow()
    table = OutboxMessage.__table__
    count = session.execute(
        delete(table).where(table.c.done_at.is_not(None), table.c.done_at < now - KEEP_DONE)
    ).rowcount
    session.commit()
    return count


@dataclass(frozen=True)
class Backlog:
    """Follow-up work not done yet: due for longer than a minute, and given up on."""

    waiting: int
    failed: int
    oldest: datetime | None

    def __bool__(self) -> bool:
        return bool(self.waiting or self.failed)


@lru_cache(maxsize=4)
def _backlog_statement(by_merchant: bool, by_network: bool):
    """``backlog``'s statement, built once per scope (the dashboard runs it on every visit)."""
    table = OutboxMessage.__table__
    # Late: due for more than a minute (a letter scheduled for tomorrow is not late).
    waiting = table.c.failed_at.is_(None) & (table.c.due_at <= bindparam("late_before", type_=table.c.due_at.type))
    query = select(
        func.count().filter(waiting),
        func.count().filter(table.c.failed_at.is_not(None)),
        func.min(table.c.due_at).filter(waiting),
    ).where(table.c.done_at.is_(None))
    if by_merchant:
        query = query.where(table.c.merchant_id == bindparam("merchant_id"))
    if by_network:
        from webapp.models import Merchant

        query = query.where(
            table.c.merchant_id.in_(select(Merchant.id).where(Merchant.network_id == bindparam("network_id")))
        )
    return query


def backlog(
    session: Session,
    merchant_id: int | None = None,
    network_id: int | None = None,
    now: datetime | None = None,
) -> Backlog:
    """The backlog of the installation, of one merchant or of one network, in one statement."""
    now = now or utcnow()
    query = _backlog_statement(merchant_id is not None, network_id is not None)
    parameters = {"late_before": now - timedelta(minutes=1)}
    if merchant_id is not None:
        parameters["merchant_id"] = merchant_id
    if network_id is not None:
        parameters["network_id"] = network_id
    row = session.execute(query, parameters).one()
    return Backlog(waiting=row[0] or 0, failed=row[1] or 0, oldest=row[2])


def retry_failed(session: Session, merchant_id: int | None = None) -> int:
    """Give failed messages a fresh set of attempts (after the cause was fixed)."""
    table = OutboxMessage.__table__
    query = update(table).where(table.c.failed_at.is_not(None), table.c.done_at.is_(None))
    if merchant_id is not None:
        query = query.where(table.c.merchant_id == merchant_id)
    count = session.execute(
        query.values(failed_at=None, attempts=0, due_at=utcnow(), relayed_at=None)
    ).rowcount
    session.commit()
    return count
