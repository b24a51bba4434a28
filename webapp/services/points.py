"""The points lifecycle: manual adjustments, welcome and birthday bonuses, expiry and its reminders.

Every movement goes through ``ledger.post`` (one guarded balance UPDATE, append-only entries).

Expiry, computed from the ledger alone
--------------------------------------
Each credit (an entry with ``amount > 0``) carries the expiry the merchant's policy gave it when
it was written: ``expires_at`` ("N months after earned"), plus ``expiry_idle_months`` when the
policy was "N months without a visit" (then the credit is due only once the card's last visit is
also that many months back). Changing the policy touches no stored credit: it applies to points
credited afterwards.

Points are consumed soonest-expiring first (with one policy in force that is oldest first: the
expiry date grows with the date earned). Every debit counts: spending, negative adjustments,
earlier expiries and a refund's reversal of earned points. So for a card at moment ``T``::

    to expire = max(0, credits due by T - all debits so far)

A daily task writes that as one ``expire`` entry per card; run twice it finds 0 the second time
(its own entry is a debit), and it never takes more than the balance. Refunds fit as ledger
entries: points a refund takes back are a debit like a purchase with points; points a refund
gives back (the points a cancelled purchase used) are a new credit with the policy of that day.
The remaining points of each credit (for the wallet, the reminders and the forecast) follow the
same order: a credit still holds ``clamp(credits up to and including it - debits, 0, amount)``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from uuid import uuid4

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp import ledger_reasons
from webapp.contracts import LedgerReason
from webapp.errors import InsufficientPoints, NotFound, ValidationFailed
from webapp.extensions import upsert_insert
from webapp.models import (
    BirthdayBonus,
    ConsentRecord,
    ExpiryReminder,
    LedgerEntry,
    Membership,
    Merchant,
    Network,
    PointsAdjustment,
    User,
    WelcomeBonusClaim,
)
from webapp.models.base import utcnow
from webapp.services.ledger import EXPIRY_MODES, Posting, add_months, post
from webapp.timezones import local_date, network_zone, today
from webapp.unit_of_work import unit_of_work

MAX_ADJUSTMENT = 10_000_000
MAX_BONUS = 1_000_000
MAX_BONUS_DAYS = 3660
EXPIRY_MONTH_CHOICES = (1, 2, 3, 6, 9, 12, 18, 24, 36, 48, 60)
REMINDER_DAYS = (30, 7)
BIRTHDAY = "birthday"
EXPIRE_BATCH = 500
_EXPIRED = LedgerReason(ledger_reasons.EXPIRED)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class LifecycleSettings:
    welcome_bonus_points: int
    birthday_bonus_points: int
    birthday_bonus_days: int
    points_expiry_mode: str
    points_expiry_months: int


def _whole(text: str | int | None, field: str, low: int, high: int, message: str) -> int:
    try:
        value = int(str(text if text is not None else "").strip() or "0")
    except ValueError:
        raise ValidationFailed(message, field=field) from None
    if not low <= value <= high:
        raise ValidationFailed(message, field=field)
    return value


def parse_settings(form: dict) -> LifecycleSettings:
    """The owner's form, checked; raises ``ValidationFailed`` naming the field."""
    mode = (form.get("expiry_mode") or "none").strip()
    if mode not in EXPIRY_MODES:
        raise ValidationFailed(_("Choose when points expire from the list."), field="expiry_mode")
    months = _whole(form.get("expiry_months") or "12", "expiry_months", 1, 120,
                    _("Choose a number of months from the list."))
    if months not in EXPIRY_MONTH_CHOICES:
        raise ValidationFailed(_("Choose a number of months from the list."), field="expiry_months")
    return LifecycleSettings(
        welcome_bonus_points=_whole(form.get("welcome_bonus"), "welcome_bonus", 0, MAX_BONUS,
                                    _("Enter a whole number of points from 0 to 1,000,000.")),
        birthday_bonus_points=_whole(form.get("birthday_bonus"), "birthday_bonus", 0, MAX_BONUS,
                                     _("Enter a whole number of points from 0 to 1,000,000.")),
        birthday_bonus_days=_whole(form.get("birthday_days") or "30", "birthday_days", 1, MAX_BONUS_DAYS,
                                   _("Enter a number of days from 1 to 3660.")),
        points_expiry_mode=mode,
        points_expiry_months=months,
    )


def save_settings(session: Session, merchant: Merchant, values: LifecycleSettings) -> None:
    """Store the bonuses and the expiry policy; points already credited keep their expiry."""
    with unit_of_work(session):
        merchant.welcome_bonus_points = values.welcome_bonus_points
        merchant.birthday_bonus_points = values.birthday_bonus_points
        merchant.birthday_bonus_days = values.birthday_bonus_days
        merchant.points_expiry_mode = values.points_expiry_mode
        merchant.points_expiry_months = values.points_expiry_months


def policy_text(merchant: Merchant) -> str | None:
    """The merchant's expiry policy in plain words (``None`` when points do not expire)."""
    months = merchant.points_expiry_months
    if merchant.points_expiry_mode == "earned":
        return _("Points expire %(months)s months after they are earned; the oldest are used first.",
                 months=months)
    if merchant.points_expiry_mode == "idle":
        return _("Points expire after %(months)s months without a visit; every purchase keeps them alive.",
                 months=months)
    return None


# --------------------------------------------------------------------------- manual adjustment


def adjust_points(
    session: Session, merchant: Merchant, membership_id: int, amount: int, reason: str,
    by_user_id: int | None, idempotency_key: str, now: datetime | None = None,
) -> PointsAdjustment:
    """Add (``amount > 0``) or remove points with a reason, recorded with who did it.

    Removal never takes the balance below zero (the guarded UPDATE refuses it). A repeated
    ``idempotency_key`` (a double click) returns the first adjustment and moves nothing.
    """
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed(_("Say why the points change; the customer sees it."), field="reason")
    if len(reason) > 200:
        raise ValidationFailed(_("At most 200 characters."), field="reason")
    if amount == 0 or abs(amount) > MAX_ADJUSTMENT:
        raise ValidationFailed(_("Enter a whole number of points other than zero."), field="points")
    if not idempotency_key or len(idempotency_key) > 80:
        raise ValidationFailed(_("The form is missing its submission key; reload the page."))
    membership = session.scalar(
        select(Membership).where(Membership.id == membership_id, Membership.merchant_id == merchant.id)
    )
    if membership is None:
        raise NotFound(_("This customer is not a member here."))
    existing = _adjustment_by_key(session, merchant.id, idempotency_key)
    if existing is not None:
        return existing
    now = now or utcnow()
    record = PointsAdjustment(
        merchant_id=merchant.id, membership_id=membership.id, amount=amount, reason=reason,
        created_by_id=by_user_id, idempotency_key=idempotency_key, created_at=now,
    )
    try:
        with unit_of_work(session):
            session.add(record)
            session.flush()
            post(session, [Posting(membership.id, merchant.id, "adjust", amount, ledger_reasons.note(reason),
                                   object_ref=f"core:points_adjustments:{record.id}")], moment=now)
    except InsufficientPoints:
        balance = session.scalar(select(Membership.balance).where(Membership.id == membership_id))
        raise ValidationFailed(
            _("The card has %(balance)s points, so at most %(balance)s can be removed.", balance=balance),
            field="points",
        ) from None
    except IntegrityError:
        existing = _adjustment_by_key(session, merchant.id, idempotency_key)
        if existing is None:
            raise
        return existing
    return record


def _adjustment_by_key(session: Session, merchant_id: int, key: str) -> PointsAdjustment | None:
    return session.scalar(
        select(PointsAdjustment).where(
            PointsAdjustment.merchant_id == merchant_id, PointsAdjustment.idempotency_key == key
        )
    )


def adjustments(session: Session, merchant: Merchant, membership_id: int, limit: int = 50):
    """The audit trail of one card, newest first, with who made each adjustment."""
    return session.execute(
        select(PointsAdjustment, User.name, User.email)
        .outerjoin(User, User.id == PointsAdjustment.created_by_id)
        .where(PointsAdjustment.merchant_id == merchant.id, PointsAdjustment.membership_id == membership_id)
        .order_by(PointsAdjustment.created_at.desc(), PointsAdjustment.id.desc())
        .limit(limit)
    ).all()


def new_form_key() -> str:
    return uuid4().hex


# --------------------------------------------------------------------------- welcome bonus


def identity_hashes(user: User) -> list[str]:
    """Hashes of the person's normalised e-mail and phone: what makes two accounts one person."""
    from webapp.services.accounts import normalize_email, normalize_phone

    identities = []
    if user.email:
        try:
            identities.append("email:" + normalize_email(user.email))
        except ValidationFailed:
            identities.append("email:" + user.email.strip().lower())
    if user.phone:
        try:
            phone = normalize_phone(user.phone)
        except ValidationFailed:
            phone = user.phone
        if phone:
            identities.append("phone:" + phone)
    return sorted(hashlib.sha256(identity.encode()).hexdigest() for identity in identities)


def grant_welcome_bonus(
    session: Session, merchant: Merchant, membership: Membership, user: User, now: datetime | None = None,
) -> bool:
    """Credit the welcome bonus if this person (by e-mail or phone) never had one here.

    Called in the joining transaction. The claims are inserted in one sorted statement that
    skips conflicts; the bonus needs every identity to be new, so a second account with the
    same e-mail or phone gets nothing, and two racing joins cannot both get it (the unique
    (merchant, identity) pair decides; on PostgreSQL the loser waits for the winner's commit).
    """
    points = merchant.welcome_bonus_points
    hashes = identity_hashes(user)
    if points <= 0 or not hashes:
        return False
    now = now or utcnow()
    table = WelcomeBonusClaim.__table__
    statement = (
        upsert_insert(session)(table)
        .values([
            {"merchant_id": merchant.id, "identity_hash": value, "membership_id": membership.id,
             "created_at": now}
            for value in hashes
        ])
        .on_conflict_do_nothing(index_elements=[table.c.merchant_id, table.c.identity_hash])
        .returning(table.c.id)
    )
    session.flush()
    claimed = session.connection().execute(statement).scalars().all()
    if len(claimed) != len(hashes):
        return False
    post(session, [Posting(membership.id, merchant.id, "reward", points, LedgerReason(ledger_reasons.WELCOME),
                           object_ref=f"core:welcome_bonus_claims:{min(claimed)}")], moment=now)
    return True


# --------------------------------------------------------------------------- birthdays


def birthday_consent(session: Session, user_id: int) -> bool:
    record = session.scalar(
        select(ConsentRecord)
        .where(ConsentRecord.user_id == user_id, ConsentRecord.merchant_id.is_(None),
               ConsentRecord.purpose == BIRTHDAY)
        .order_by(ConsentRecord.created_at.desc(), ConsentRecord.id.desc())
        .limit(1)
    )
    return bool(record and record.granted)


def birthday_consent_text() -> str:
    return _(
        "The businesses where I have a card may use my birthday (day and month, and the year if "
        "I give it) to greet me and give me a birthday bonus. I can remove it at any time."
    )


def parse_birthday(day_text: str, month_text: str, year_text: str, now: datetime | None = None):
    """(day, month, year or None) from the form; February 29 is accepted without a year."""
    try:
        day, month = int(day_text), int(month_text)
    except (TypeError, ValueError):
        raise ValidationFailed(_("Choose the day and the month of your birthday."), field="birthday") from None
    year = None
    if (year_text or "").strip():
        try:
            year = int(year_text)
        except ValueError:
            raise ValidationFailed(_("Enter the year as four digits, or leave it empty."), field="birthday") from None
    current = (now or utcnow()).year
    if year is not None and not 1900 <= year <= current:
        raise ValidationFailed(_("Enter the year as four digits, or leave it empty."), field="birthday")
    try:
        date(year or 2000, month, day)  # 2000 is a leap year: February 29 is a birthday
    except ValueError:
        raise ValidationFailed(_("That day does not exist in that month."), field="birthday") from None
    return day, month, year


def set_birthday(
    session: Session, user: User, birthday: tuple[int, int, int | None] | None, consent: bool,
    text_version: str,
) -> None:
    """Store the birthday with its own consent, or remove both; each change of consent is recorded."""
    had = birthday_consent(session, user.id)
    if consent and birthday is None:
        raise ValidationFailed(_("Choose the day and the month of your birthday."), field="birthday")
    with unit_of_work(session):
        if not consent:
            user.birth_day = user.birth_month = user.birth_year = None
            if had:
                session.add(ConsentRecord(user_id=user.id, merchant_id=None, purpose=BIRTHDAY, granted=False,
                                          text_version=text_version, text=birthday_consent_text()))
            return
        user.birth_day, user.birth_month, user.birth_year = birthday
        if not had:
            session.add(ConsentRecord(user_id=user.id, merchant_id=None, purpose=BIRTHDAY, granted=True,
                                      text_version=text_version, text=birthday_consent_text()))


def birthday_pairs(day: date) -> list[tuple[int, int]]:
    """(month, day) pairs whose birthday is ``day``: February 29 is kept on the 28th in common years."""
    pairs = [(day.month, day.day)]
    if day.month == 2 and day.day == 28:
        try:
            date(day.year, 2, 29)
        except ValueError:
            pairs.append((2, 29))
    return pairs


def run_birthday_bonuses(session: Session, now: datetime | None = None) -> int:
    """Credit today's birthday bonuses (today where each network is); returns how many.

    Exactly once per card and year: the (membership, year) row is inserted skipping conflicts
    and only the rows this run inserted are credited, in the same transaction. A second run, or
    a second worker at the same moment, inserts nothing and credits nothing.
    """
    from webapp.services.memberships import MARKETING, has_consent

    now = now or utcnow()
    credited = 0
    for network in session.scalars(select(Network).order_by(Network.id)).all():
        day = today(network_zone(network), now)
        pairs = birthday_pairs(day)
        rows = session.execute(
            select(Membership.id, Membership.merchant_id, Membership.user_id)
            .join(User, User.id == Membership.user_id)
            .join(Merchant, Merchant.id == Membership.merchant_id)
            .where(
                Merchant.network_id == network.id, Merchant.status == "active",
                Merchant.birthday_bonus_points > 0, Membership.left_at.is_(None),
                User.erased_at.is_(None),
                or_(*[and_(User.birth_month == month, User.birth_day == dom) for month, dom in pairs]),
            )
            .order_by(Membership.id)
        ).all()
        session.rollback()  # end the read; each batch below is its own transaction
        for start in range(0, len(rows), EXPIRE_BATCH):
            batch = rows[start:start + EXPIRE_BATCH]
            table = BirthdayBonus.__table__
            with unit_of_work(session):  # one transaction per batch
                inserted = set(session.connection().execute(
                    upsert_insert(session)(table)
                    .values([{"membership_id": row.id, "year": day.year, "created_at": now} for row in batch])
                    .on_conflict_do_nothing(index_elements=[table.c.membership_id, table.c.year])
                    .returning(table.c.membership_id, table.c.id)
                ).all())
                bonus_ids = dict(inserted)
                winners = [row for row in batch if row.id in bonus_ids]
                merchants = {m.id: m for m in session.scalars(
                    select(Merchant).where(Merchant.id.in_({row.merchant_id for row in winners}))
                )} if winners else {}
                postings = []
                for row in winners:
                    merchant = merchants[row.merchant_id]
                    postings.append(Posting(
                        row.id, row.merchant_id, "reward", merchant.birthday_bonus_points,
                        ledger_reasons.birthday(day.year), object_ref=f"core:birthday_bonuses:{bonus_ids[row.id]}",
                        expires_at=now + timedelta(days=merchant.birthday_bonus_days), apply_policy=False,
                    ))
                post(session, postings, moment=now)
                for row in winners:
                    if has_consent(session, row.user_id, row.merchant_id, MARKETING):
                        _birthday_email(session, merchants[row.merchant_id], row.user_id, now)
            credited += len(winners)
    return credited


def _locale_for(user: User, merchant: Merchant) -> str:
    from flask import current_app

    locale = user.locale or merchant.network.default_locale
    return locale if locale in current_app.config["LANGUAGES"] else "en"


def _wallet_link() -> str:
    from webapp.web import public_url

    return public_url("wallet.index")


def _birthday_email(session: Session, merchant: Merchant, user_id: int, now: datetime) -> None:
    from flask_babel import format_date

    from webapp.formatting import points as format_points
    from webapp.mail import send_email

    user = session.get(User, user_id)
    if user is None or user.erased_at is not None:
        return
    link = _wallet_link()
    with force_locale(_locale_for(user, merchant)):
        until = format_date(local_date(now + timedelta(days=merchant.birthday_bonus_days), network_zone(merchant.network)))
        subject = _("Happy birthday from %(merchant)s!", merchant=merchant.name)
        text = _(
            "Hello %(name)s,\n\nhappy birthday from everyone at %(merchant)s! We added %(points)s "
            "points to your card as a present; they are yours until %(date)s.\n\nYour wallet:\n%(link)s",
            name=user.first_name, merchant=merchant.name,
            points=format_points(merchant.birthday_bonus_points), date=until, link=link,
        )
    send_email(user.email, subject, text, sender_name=merchant.name)


# --------------------------------------------------------------------------- expiry


def _idle_cutoff(now: datetime):
    """For a credit under "N months without a visit": the latest last visit that lets it expire."""
    table = LedgerEntry.__table__
    return case(
        {months: add_months(now, -months) for months in EXPIRY_MONTH_CHOICES},
        value=table.c.expiry_idle_months,
    )


def _due_condition(now: datetime):
    ledger, cards = LedgerEntry.__table__, Membership.__table__
    return and_(
        ledger.c.amount > 0,
        ledger.c.expires_at <= now,
        or_(
            ledger.c.expiry_idle_months.is_(None),
            cards.c.last_purchase_at.is_(None),
            cards.c.last_purchase_at <= _idle_cutoff(now),
        ),
    )


def _to_expire(now: datetime):
    """(membership, merchant, due credits, debits) for the cards ``ids`` names. Built once a run
    (the list of cards is an expanding parameter). The sums are correlated per card, so each
    reads the card's own entries through the (membership, time) index whatever the ledger's size.
    """
    ledger, cards = LedgerEntry.__table__, Membership.__table__
    own = ledger.c.membership_id == cards.c.id
    due = (
        select(func.coalesce(func.sum(ledger.c.amount), 0)).where(own, _due_condition(now))
        .correlate(cards).scalar_subquery()
    )
    debits = (
        select(func.coalesce(func.sum(-ledger.c.amount), 0)).where(own, ledger.c.amount < 0)
        .correlate(cards).scalar_subquery()
    )
    return (
        select(cards.c.id, cards.c.merchant_id, due.label("due"), debits.label("debits"))
        .where(cards.c.id.in_(bindparam("ids", expanding=True)), cards.c.balance > 0)
        .order_by(cards.c.id)
    )


def run_expiry(
    session: Session, now: datetime | None = None, batch_size: int = EXPIRE_BATCH,
    merchant_id: int | None = None,
) -> int:
    """Write today's ``expire`` entries; returns the points expired.

    Cards with a due credit and a positive balance are found in one statement; then per batch:
    lock the cards (PostgreSQL; SQLite's write transaction is already exclusive), compute what
    is due minus what was consumed for all of them in one grouped statement, post the entries
    (one guarded UPDATE, one INSERT) and commit. Concurrent sales wait for the lock and see the
    new balance; a second run finds nothing left to expire.
    """
    now = now or utcnow()
    ledger, cards = LedgerEntry.__table__, Membership.__table__
    # Batches follow merchants, so a batch bumps the weekly figures of one or two merchants.
    found = (
        select(cards.c.merchant_id, ledger.c.membership_id).distinct()
        .select_from(ledger.join(cards, cards.c.id == ledger.c.membership_id))
        .where(ledger.c.expires_at <= now, ledger.c.amount > 0, cards.c.balance > 0)
        .order_by(cards.c.merchant_id, ledger.c.membership_id)
    )
    if merchant_id is not None:  # one merchant's cards only (an operator's command, tests)
        found = found.where(cards.c.merchant_id == merchant_id)
    candidates = [row.membership_id for row in session.connection().execute(found)]
    session.rollback()  # end the read; each batch below is its own transaction
    dialect = session.get_bind().dialect.name
    to_expire = _to_expire(now)
    lock = select(cards.c.id).where(cards.c.id.in_(bindparam("ids", expanding=True))).order_by(cards.c.id).with_for_update()
    expired = 0
    for start in range(0, len(candidates), batch_size):
        batch = candidates[start:start + batch_size]
        with unit_of_work(session):  # one transaction per batch
            if dialect == "postgresql":
                session.connection().execute(lock, {"ids": batch})
            rows = session.connection().execute(to_expire, {"ids": batch}).all()
            postings = [
                Posting(row.id, row.merchant_id, "expire", -int(row.due - row.debits), _EXPIRED)
                for row in rows
                if row.due > row.debits
            ]
            post(session, postings, moment=now)
        expired += sum(-p.amount for p in postings)
    return expired


@dataclass(frozen=True)
class Lot:
    """Points of one credit still on a card, and when they expire (where the card's network is)."""

    membership_id: int
    merchant_id: int
    points: int
    expires_at: datetime


def alive_lots(session: Session, where, now: datetime | None = None) -> list[Lot]:
    """Credits with an expiry that still hold points, for the cards ``where`` selects.

    One statement: a running sum of expiring credits in consumption order per card (a window),
    against the card's debits. Under "months without a visit" the date is the later of the
    stored one and the last visit plus those months.
    """
    return _lots(session.connection().execute(_alive_lots_statement(where)).all())


def _alive_lots_statement(where):
    """``alive_lots``' statement for the cards ``where`` selects."""
    ledger, cards = LedgerEntry.__table__, Membership.__table__
    debits = (
        select(ledger.c.membership_id, func.sum(-ledger.c.amount).label("debits"))
        .where(ledger.c.amount < 0, ledger.c.membership_id.in_(select(cards.c.id).where(where)))
        .group_by(ledger.c.membership_id)
        .subquery("debits")
    )
    running = (
        select(
            ledger.c.membership_id, cards.c.merchant_id, ledger.c.amount, ledger.c.expires_at,
            ledger.c.expiry_idle_months, cards.c.last_purchase_at, ledger.c.created_at, ledger.c.id,
            func.coalesce(debits.c.debits, 0).label("debits"),
            func.sum(ledger.c.amount).over(
                partition_by=ledger.c.membership_id,
                order_by=(ledger.c.expires_at, ledger.c.created_at, ledger.c.id),
            ).label("running"),
        )
        .select_from(
            ledger.join(cards, cards.c.id == ledger.c.membership_id)
            .outerjoin(debits, debits.c.membership_id == ledger.c.membership_id)
        )
        .where(where, cards.c.balance > 0, ledger.c.amount > 0, ledger.c.expires_at.is_not(None))
        .subquery("running")
    )
    return select(running).where(running.c.running > running.c.debits)


@lru_cache(maxsize=2)
def _cards_lots_statement(first: int | None = None):
    """``alive_lots`` of a list of cards (``membership_ids``), built once: the wallet asks on
    every visit and building the windowed statement cost more Python than running it. With
    ``first``, only each card's first ``first`` live credits in the order they are used up."""
    alive = _alive_lots_statement(Membership.__table__.c.id.in_(bindparam("membership_ids", expanding=True)))
    if first is None:
        return alive
    alive = alive.subquery("alive")
    ranked = select(
        alive,
        func.row_number().over(
            partition_by=alive.c.membership_id, order_by=(alive.c.expires_at, alive.c.created_at, alive.c.id)
        ).label("rank"),
    ).subquery("ranked")
    return select(ranked).where(ranked.c.rank <= first)


# The wallet reads this many live credits a card (a regular's history holds hundreds), and
# reads on only for a card whose first ones might not include its next expiry day.
FIRST_LOTS = 16


def _lots(rows) -> list[Lot]:
    lots = []
    for row in rows:
        left = min(row.amount, row.running - row.debits)
        if left <= 0:
            continue
        expires_at = row.expires_at
        if row.expiry_idle_months and row.last_purchase_at is not None:
            expires_at = max(expires_at, add_months(row.last_purchase_at, row.expiry_idle_months))
        lots.append(Lot(row.membership_id, row.merchant_id, int(left), expires_at))
    return lots


@dataclass(frozen=True)
class NextExpiry:
    points: int
    on: date


def next_expiries(session: Session, membership_ids: list[int], zones: dict[int, object],
                  now: datetime | None = None) -> dict[int, NextExpiry]:
    """Per card: the points that expire first and the local day they do (none: not listed)."""
    if not membership_ids:
        return {}
    now = now or utcnow()

    def day_of(membership_id: int, moment: datetime) -> date:
        tz = zones.get(membership_id)
        return local_date(max(moment, now), tz) if tz else max(moment, now).astimezone(UTC).date()

    by_card: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    connection = session.connection()
    rows = connection.execute(_cards_lots_statement(FIRST_LOTS), {"membership_ids": list(membership_ids)}).all()
    for lot in _lots(rows):
        by_card[lot.membership_id][day_of(lot.membership_id, lot.expires_at)] += lot.points
    # A credit's date is never before its stored one, so the credits after a card's first ones
    # can only fall on its earliest day if the last of those is stored on or before that day.
    last_read = {row.membership_id: row.expires_at for row in rows if row.rank == FIRST_LOTS}
    more = [card for card, stored in last_read.items() if day_of(card, stored) <= min(by_card[card])]
    if more:
        for membership_id in more:
            by_card.pop(membership_id)
        for lot in _lots(connection.execute(_cards_lots_statement(), {"membership_ids": more}).all()):
            by_card[lot.membership_id][day_of(lot.membership_id, lot.expires_at)] += lot.points
    result = {}
    for membership_id, days in by_card.items():
        first = min(days)
        result[membership_id] = NextExpiry(days[first], first)
    return result


def expiry_forecast(session: Session, merchant: Merchant, now: datetime | None = None,
                    months: int = 12) -> list[tuple[date, int]]:
    """Points due to expire in each of the next ``months`` local months, if nobody spends them."""
    now = now or utcnow()
    tz = network_zone(merchant.network)
    first = local_date(now, tz).replace(day=1)
    buckets = [(add_months(datetime(first.year, first.month, 1), index).date(), 0) for index in range(months)]
    totals = dict(buckets)
    for lot in alive_lots(session, Membership.merchant_id == merchant.id, now):
        day = local_date(max(lot.expires_at, now), tz).replace(day=1)
        if day in totals:
            totals[day] += lot.points
    return [(month, totals[month]) for month, _zero in buckets]


def send_reminders(session: Session, now: datetime | None = None) -> int:
    """E-mail customers 30 and 7 days before points expire: once per card, expiry day and
    distance (a unique row inserted skipping conflicts decides who sends). Returns the count."""
    now = now or utcnow()
    horizon = now + timedelta(days=max(REMINDER_DAYS) + 1)
    ledger = LedgerEntry.__table__
    # Credits whose date falls in the window, and credits under "months without a visit" (a
    # visit moves their date): the exact dates are worked out per card below.
    soon = select(ledger.c.membership_id).where(
        ledger.c.amount > 0, ledger.c.expires_at <= horizon,
        or_(ledger.c.expires_at > now - timedelta(days=1), ledger.c.expiry_idle_months.is_not(None)),
    )
    cards = session.execute(
        select(Membership.id, Network.timezone)
        .join(Merchant, Merchant.id == Membership.merchant_id)
        .join(Network, Network.id == Merchant.network_id)
        .where(Membership.id.in_(soon), Membership.left_at.is_(None), Membership.balance > 0)
    ).all()
    from webapp.timezones import zone

    zones = {card.id: zone(card.timezone) for card in cards}
    upcoming = next_expiries(session, list(zones), zones, now)
    sent = 0
    table = ExpiryReminder.__table__
    for membership_id, expiry in sorted(upcoming.items()):
        left = (expiry.on - today(zones[membership_id], now)).days
        due = [days for days in REMINDER_DAYS if left <= days]
        if not due or left < 0:
            continue
        days_before = min(due)  # the nearest reminder this distance calls for
        with unit_of_work(session):  # the reminder's row and its e-mail, once per card
            inserted = session.connection().execute(
                upsert_insert(session)(table)
                .values(membership_id=membership_id, expires_on=expiry.on, days_before=days_before,
                        points=expiry.points, created_at=now)
                .on_conflict_do_nothing(index_elements=[table.c.membership_id, table.c.expires_on, table.c.days_before])
                .returning(table.c.id)
            ).scalar()
            if inserted is not None:
                _reminder_email(session, membership_id, expiry, left)
                sent += 1
    session.rollback()  # end the last read (a run with nothing to remind)
    return sent


def _reminder_email(session: Session, membership_id: int, expiry: NextExpiry, left: int) -> None:
    from flask_babel import format_date, ngettext

    from webapp.formatting import points as format_points
    from webapp.mail import send_email

    membership = session.get(Membership, membership_id)
    user, merchant = membership.user, membership.merchant
    if user.erased_at is not None or not user.email:
        return
    link = _wallet_link()
    with force_locale(_locale_for(user, merchant)):
        on = format_date(expiry.on)
        subject = _("%(points)s points at %(merchant)s expire on %(date)s",
                    points=format_points(expiry.points), merchant=merchant.name, date=on)
        text = _(
            "Hello %(name)s,\n\n%(points)s points on your card at %(merchant)s expire on %(date)s, "
            "in %(days)s. Use them on your next visit.\n\nYour wallet:\n%(link)s",
            name=user.first_name, points=format_points(expiry.points), merchant=merchant.name,
            date=on, days=ngettext("%(num)s day", "%(num)s days", left), link=link,
        )
    send_email(user.email, subject, text, sender_name=merchant.name)
