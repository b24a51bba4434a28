"""A merchant's books as rows for CSV: customers with balances, and the points ledger of a period
for the accountant. Rows are generated while the database streams them (``yield_per``: a
server-side cursor on PostgreSQL), so an export of any size holds one batch in memory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp import ledger_reasons
from webapp.errors import ValidationFailed
from webapp.models import LedgerEntry, Membership, Merchant, User
from webapp.services import accounts
from webapp.timezones import day_start, network_zone

BATCH = 1000
MAX_PERIOD_DAYS = 3660  # ten years: an accountant's longest question



def customer_rows(session: Session, merchant: Merchant) -> Iterator[list[object]]:
    """Header, then one row per card at ``merchant`` (oldest first): who, contacts, balance, spend."""
    zone = network_zone(merchant.network)
    yield [
        "card_code", "name", "email", "phone", "joined", "points_balance", "total_spent_minor",
        "currency", "visits", "last_visit", "status",
    ]
    statement = (
        select(
            User.card_code, User.name, User.email, User.phone, User.erased_at, Membership.joined_at,
            Membership.balance, Membership.total_spent, Membership.visits,
            Membership.last_purchase_at, Membership.left_at,
        )
        .join(User, User.id == Membership.user_id)
        .where(Membership.merchant_id == merchant.id)
        .order_by(Membership.id)
        .execution_options(yield_per=BATCH)
    )
    currency = merchant.network.currency
    for row in session.execute(statement):
        erased = row.erased_at is not None
        email = "" if erased or accounts.is_placeholder_email(row.email) else row.email
        yield [
            row.card_code, "" if erased else row.name, email, "" if erased else (row.phone or ""),
            row.joined_at.astimezone(zone).date().isoformat(), row.balance, row.total_spent, currency,
            row.visits,
            row.last_purchase_at.astimezone(zone).date().isoformat() if row.last_purchase_at else "",
            "left" if row.left_at else "active",
        ]


def parse_period(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """The inclusive local dates of a ledger export; the current month by default."""
    try:
        first = date.fromisoformat(start) if start else today.replace(day=1)
        last = date.fromisoformat(end) if end else today
    except ValueError:
        raise ValidationFailed(_("Give the dates as YYYY-MM-DD, e.g. 2026-01-31.")) from None
    if last < first:
        raise ValidationFailed(_("The period ends before it starts."))
    if (last - first).days > MAX_PERIOD_DAYS:
        raise ValidationFailed(_("Export at most ten years at a time."))
    return first, last


def ledger_rows(session: Session, merchant: Merchant, first: date, last: date) -> Iterator[list[object]]:
    """Header, then every ledger entry of ``merchant`` on the local days ``first``..``last``.

    ``reason`` is the sentence in the current locale (the reader's), ``reason_kind`` the
    language-neutral kind it was rendered from (``webapp.ledger_reasons``).
    """
    zone = network_zone(merchant.network)
    start: datetime = day_start(first, zone)
    end: datetime = day_start(last + timedelta(days=1), zone)
    yield [
        "entry", "time", "card_code", "customer", "kind", "points", "value_minor", "currency",
        "reason", "source", "purchase", "reason_kind",
    ]
    statement = (
        select(
            LedgerEntry.id, LedgerEntry.created_at, LedgerEntry.kind, LedgerEntry.amount,
            LedgerEntry.reason_kind, LedgerEntry.reason_params, LedgerEntry.source, LedgerEntry.purchase_id, User.card_code,
            User.name, User.erased_at,
        )
        .join(Membership, Membership.id == LedgerEntry.membership_id)
        .join(User, User.id == Membership.user_id)
        .where(
            LedgerEntry.merchant_id == merchant.id,
            LedgerEntry.created_at >= start,
            LedgerEntry.created_at < end,
        )
        .order_by(LedgerEntry.created_at, LedgerEntry.id)
        .execution_options(yield_per=BATCH)
    )
    locale = str(get_locale() or "en")
    value = merchant.network.point_value_minor
    currency = merchant.network.currency
    for row in session.execute(statement):
        yield [
            row.id, row.created_at.astimezone(zone).isoformat(timespec="seconds"), row.card_code,
            "" if row.erased_at else row.name, row.kind, row.amount, row.amount * value, currency,
            ledger_reasons.render_cached(row.reason_kind, row.reason_params, locale), row.source,
            row.purchase_id or "", row.reason_kind,
        ]
