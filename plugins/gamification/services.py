"""Status levels and badges: derived from purchases, so a recomputation gives the stored level."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, and_, bindparam, case, func, literal, null, select, update
from sqlalchemy.orm import Session

from plugins.gamification import PLUGIN
from plugins.gamification.models import Badge, Level, Status
from webapp.plugin_api import (
    Membership,
    Merchant,
    Purchase,
    ValidationFailed,
    local_date,
    network_zone,
    per_dialect,
    record_event,
    setting_usable,
    unit_of_work,
    upsert_insert,
    utcnow,
)
from webapp.plugin_api import (
    month_start as local_month_start,
)

log = logging.getLogger(__name__)

DEFAULT_LEVELS = (
    (_l("New"), 0, None),  # None: the merchant's base rate
    (_l("Regular"), 1, 100),
    (_l("Silver"), 2, 200),
    (_l("Gold"), 3, 350),
    (_l("VIP"), 4, 500),
)
# Default thresholds per basis: spend (in major units, scaled by the currency), visits, friends.
DEFAULT_THRESHOLDS = {
    "spend": (0, 10_000, 50_000, 150_000, 400_000),
    "visits": (0, 3, 10, 25, 50),
    "referrals": (0, 1, 3, 5, 10),
}
BADGE_NAMES = {
    "first_purchase": _l("First purchase"),
    "tenth_visit": _l("Tenth visit"),
    "monthly_streak": _l("Monthly streak"),
    "good_neighbour": _l("Good neighbour"),
}
DOWNGRADE_NOTICE_DAYS = 30



def create_default_levels(session: Session, merchant: Merchant, basis: str = "spend") -> None:
    """Five levels (only if the merchant has none yet, so re-enabling keeps edits)."""
    if session.scalar(select(func.count()).select_from(Level).where(Level.merchant_id == merchant.id)):
        return
    scale = 100  # thresholds are typed in major units; money is stored in minor units
    for position, (name, _index, extra_bp) in enumerate(DEFAULT_LEVELS):
        threshold = DEFAULT_THRESHOLDS[basis][position] * (scale if basis == "spend" else 1)
        rate = merchant.cashback_bp if extra_bp is None else merchant.cashback_bp + extra_bp
        session.add(Level(merchant_id=merchant.id, position=position, name=str(name),
                          threshold=threshold, cashback_bp=min(rate, 10000)))
    session.flush()


def levels(session: Session, merchant_id: int) -> list[Level]:
    return list(session.scalars(select(Level).where(Level.merchant_id == merchant_id).order_by(Level.position)))


def save_levels(session: Session, merchant: Merchant, rows: list[tuple[str, int, int]]) -> Backfill:
    """Replace names, thresholds and rates (validated: names given, thresholds rising), place
    every member on the level their history gives; commits."""
    errors: dict[str, str] = {}
    previous = -1
    for index, (name, threshold, rate) in enumerate(rows):
        if not name.strip():
            errors[f"name_{index}"] = _("Give the level a name.")
        if index == 0 and threshold != 0:
            errors[f"threshold_{index}"] = _("The first level starts at zero.")
        elif threshold <= previous:
            errors[f"threshold_{index}"] = _("Each level needs a higher threshold than the one before.")
        if not 0 <= rate <= 10000:
            errors[f"rate_{index}"] = _("The rate must be between 0 and 100%.")
        previous = threshold
    if errors:
        raise ValidationFailed(_("Check the highlighted levels."), errors=errors)
    with unit_of_work(session):
        existing = {level.position: level for level in levels(session, merchant.id)}
        for index, (name, threshold, rate) in enumerate(rows):
            level = existing.get(index) or Level(merchant_id=merchant.id, position=index)
            level.name, level.threshold, level.cashback_bp = name.strip()[:40], threshold, rate
            session.add(level)
        session.flush()
        result = backfill(session, merchant)
    return result


def window_start(window: str, now: datetime) -> datetime | None:
    if window == "rolling":
        return now - timedelta(days=365)
    if window == "calendar":
        return datetime(now.year, 1, 1, tzinfo=now.tzinfo)
    return None


def period_key(window: str, now: datetime) -> str:
    """The window a downgrade belongs to (at most one per period)."""
    if window == "calendar":
        return str(now.year)
    return f"{now.year}-{now.month:02d}" if window == "rolling" else "all"


def metric(
    session: Session, merchant: Merchant, membership_id: int, settings: dict, now: datetime | None = None
) -> int:
    """What counts toward a level, from purchases that were not refunded (the sale's one query)."""
    now = now or utcnow()
    return _facts(session, merchant, membership_id, settings, now, now).value


def position_for(level_rows: list[Level], value: int) -> int:
    position = 0
    for level in level_rows:
        if value >= level.threshold:
            position = max(position, level.position)
    return position


def recompute(
    session: Session, merchant: Merchant, membership_id: int, settings: dict,
    purchase_id: int | None = None, level_rows: list[Level] | None = None,
) -> Status:
    """Set a member's level from their data (inside the caller's transaction; no commit).

    A rise is a level-up (announced on the card and by e-mail); a fall here comes from a
    refund, which corrects the data rather than downgrading the customer. The purchase path
    runs the same rule through ``_facts`` and ``_store_level`` without loading the status.
    """
    session.flush()
    level_rows = level_rows if level_rows is not None else levels(session, merchant.id)
    value = metric(session, merchant, membership_id, settings)
    _store_level(session, merchant.id, membership_id, position_for(level_rows, value), value, purchase_id)
    return session.scalars(
        select(Status).where(Status.membership_id == membership_id)
        .execution_options(populate_existing=True)
    ).one()


def level_rate_column():
    """A level's cashback as customers get it: never below the business's base rate, so raising
    the base rate lifts the levels that gave the old one instead of leaving them behind."""
    lv, merchants = Level.__table__, Merchant.__table__
    return case((lv.c.cashback_bp > merchants.c.cashback_bp, lv.c.cashback_bp),
                else_=merchants.c.cashback_bp).label("cashback_bp")


def _purchase_metric(p, basis: str, in_window):
    """The level metric over live purchases ``p`` (aggregated per member by the caller): spend or
    visits, counted only where ``in_window`` holds when the window is not "lifetime" (``None``).
    The sale's per-member query and the bulk backfill both build it here."""
    if basis == "spend":
        return func.coalesce(
            func.sum(case((in_window, p.c.amount), else_=0) if in_window is not None else p.c.amount), 0
        )
    return func.coalesce(func.sum(case((in_window, 1), else_=0)), 0) if in_window is not None else func.count(p.c.id)


_BADGE_BITS = {"first_purchase": 1, "tenth_visit": 2, "monthly_streak": 4, "good_neighbour": 8}


class _Statements:
    """The purchase path's statements, built once per dialect on the tables and run on the
    session's connection: a sale pays for executing them, not for composing them again."""

    def __init__(self, dialect: str) -> None:
        insert = upsert_insert(dialect)
        self._facts: dict[tuple[str, bool, bool], object] = {}
        st, lv = Status.__table__, Level.__table__
        self.level_rate = (
            select(level_rate_column(), lv.c.name)
            .join(Merchant.__table__, Merchant.__table__.c.id == lv.c.merchant_id)
            .join(st, and_(st.c.merchant_id == lv.c.merchant_id,
                           lv.c.position == case((st.c.held_position > st.c.position, st.c.held_position),
                                                 else_=st.c.position)))
            .where(st.c.membership_id == bindparam("membership_id"), lv.c.merchant_id == bindparam("merchant_id"))
        )
        # A status row in one statement: a new row starts at 0 (so any level above is a level-up);
        # an existing row takes the new position and metric, cancels an announced drop the member
        # climbed back from, and records a level-up only when the effective level rises (the new
        # position beats both the old position and the held one). SET reads the old row.
        statement = insert(st).values(
            merchant_id=bindparam("s_merchant_id"), membership_id=bindparam("s_membership_id"),
            position=bindparam("s_position"), held_position=0, metric=bindparam("s_metric"),
            reached_at=bindparam("s_reached_at", type_=st.c.reached_at.type),
            level_up_purchase_id=bindparam("s_purchase_id"),
            level_up_seen=bindparam("s_seen", type_=st.c.level_up_seen.type),
            level_up_emailed=bindparam("s_emailed", type_=st.c.level_up_emailed.type),
        )
        new = statement.excluded
        rises = and_(new.position > st.c.position, new.position > st.c.held_position)
        climbed_back = and_(st.c.downgrade_to.is_not(None), new.position > st.c.downgrade_to)
        self.store_level = statement.on_conflict_do_update(
            index_elements=[st.c.membership_id],
            set_={
                "position": new.position,
                "metric": new.metric,
                "downgrade_to": case((climbed_back, null()), else_=st.c.downgrade_to),
                "downgrade_on": case((climbed_back, null()), else_=st.c.downgrade_on),
                "reached_at": case((rises, new.reached_at), else_=st.c.reached_at),
                "level_up_purchase_id": case((rises, new.level_up_purchase_id), else_=st.c.level_up_purchase_id),
                "level_up_seen": case((rises, new.level_up_seen), else_=st.c.level_up_seen),
                "level_up_emailed": case((rises, new.level_up_emailed), else_=st.c.level_up_emailed),
            },
        )

    def facts(self, basis: str, windowed: bool, referrals_on: bool):
        """One query: the member's metric and the level it gives, their live visits (all time
        and this month) and the badges they hold (bits of ``_BADGE_BITS``)."""
        key = (basis, windowed, referrals_on)
        statement = self._facts.get(key)
        if statement is not None:
            return statement
        p, lv, b = Purchase.__table__, Level.__table__, Badge.__table__
        membership_id = bindparam("membership_id", type_=Integer)
        merchant_id = bindparam("merchant_id", type_=Integer)
        start = bindparam("start", type_=p.c.created_at.type)
        month_start = bindparam("month_start", type_=p.c.created_at.type)
        if basis == "referrals":
            if referrals_on:  # friends with a live purchase here (in the window)
                friend, bought = Membership.__table__.alias("friend"), p.alias("bought")
                conditions = [friend.c.referrer_id == membership_id, bought.c.refunded_at.is_(None),
                              bought.c.merchant_id == merchant_id]
                if windowed:
                    conditions.append(bought.c.created_at >= start)
                value = (
                    select(func.count(func.distinct(friend.c.id)))
                    .select_from(friend.join(bought, bought.c.membership_id == friend.c.id))
                    .where(*conditions).scalar_subquery()
                )
            else:
                value = literal(0, Integer)
        else:
            value = _purchase_metric(p, basis, p.c.created_at >= start if windowed else None)
        agg = (
            select(value.label("value"), func.count(p.c.id).label("visits"),
                   func.coalesce(func.sum(case((p.c.created_at >= month_start, 1), else_=0)), 0)
                   .label("this_month"))
            .where(p.c.membership_id == membership_id, p.c.refunded_at.is_(None))
            .subquery("agg")
        )
        position = (
            select(func.coalesce(func.max(lv.c.position), 0))
            .where(lv.c.merchant_id == merchant_id, lv.c.threshold <= agg.c.value)
            .scalar_subquery()
        )
        bits = case(*[(b.c.badge == name, bit) for name, bit in _BADGE_BITS.items()], else_=0)
        have = (
            select(func.coalesce(func.sum(bits), 0)).where(b.c.membership_id == membership_id)
            .scalar_subquery()
        )
        st = Status.__table__
        stored = (  # the level stored before this change (0 for a member without a status row)
            select(func.coalesce(func.max(st.c.position), 0)).where(st.c.membership_id == membership_id)
            .scalar_subquery()
        )
        statement = self._facts[key] = select(
            agg.c.value, position, agg.c.visits, agg.c.this_month, have, stored
        )
        return statement


_sql = per_dialect(_Statements)


@dataclass(frozen=True)
class _Facts:
    value: int
    position: int
    visits: int
    this_month: int
    badges: frozenset[str]
    stored_position: int = 0


def _facts(
    session: Session, merchant: Merchant, membership_id: int, settings: dict, now: datetime,
    month_start: datetime,
) -> _Facts:
    """What ``metric`` and ``position_for`` give, plus what the badges need, in one query."""
    start = window_start(settings["window"], now)
    basis = settings["basis"]
    referrals_on = basis == "referrals" and setting_usable(merchant, PLUGIN.name, "basis")
    statement = _sql(session).facts(basis, start is not None, referrals_on)
    value, position, visits, this_month, have, stored = session.connection().execute(statement, {
        "membership_id": membership_id, "merchant_id": merchant.id, "start": start, "month_start": month_start,
    }).one()
    badges = frozenset(name for name, bit in _BADGE_BITS.items() if int(have) & bit)
    return _Facts(int(value or 0), int(position), int(visits), int(this_month), badges, int(stored or 0))


def _announce_level_change(
    session: Session, merchant: Merchant, membership_id: int, facts: _Facts, reason: str,
    purchase_id: int | None,
) -> None:
    """Announce ``level.changed`` (webhooks) when the stored level moved; no query otherwise."""
    if facts.position == facts.stored_position:
        return
    names = dict(session.execute(
        select(Level.position, Level.name).where(
            Level.merchant_id == merchant.id, Level.position.in_((facts.position, facts.stored_position))
        )
    ).all())
    record_event(session, merchant, "level.changed", {
        "membership_id": membership_id,
        "previous_level": {"position": facts.stored_position, "name": names.get(facts.stored_position)},
        "level": {"position": facts.position, "name": names.get(facts.position)},
        "reason": reason,
        "purchase_id": purchase_id,
    })


def _store_level(
    session: Session, merchant_id: int, membership_id: int, position: int, value: int, purchase_id: int | None,
) -> None:
    """Write a member's level as ``recompute`` defines it, in one upsert (no status loaded)."""
    rises = position > 0  # for a new row, which starts at level 0
    session.connection().execute(_sql(session).store_level, {
        "s_merchant_id": merchant_id, "s_membership_id": membership_id, "s_position": position,
        "s_metric": value, "s_reached_at": utcnow() if rises else None,
        "s_purchase_id": purchase_id if rises else None, "s_seen": not rises,
        "s_emailed": not rises or purchase_id is None,
    })


def status_of(session: Session, membership_id: int) -> Status | None:
    return session.scalar(select(Status).where(Status.membership_id == membership_id))


def members_at_level(merchant_id: int, position_text: str):
    """SQL (not run): ids of the merchant's members whose current level is at ``position_text``,
    the level ``level_rate`` names; members without a status row are at the entry level (0)."""
    try:
        position = int(position_text)
    except (TypeError, ValueError):
        return None
    if not 0 <= position <= 100:
        return None
    st, members = Status.__table__, Membership.__table__
    current = case((st.c.held_position > st.c.position, st.c.held_position), else_=st.c.position)
    at_level = select(st.c.membership_id).where(st.c.merchant_id == merchant_id, current == position)
    if position == 0:
        without_status = select(members.c.id).where(
            members.c.merchant_id == merchant_id,
            ~select(st.c.id).where(st.c.membership_id == members.c.id).exists(),
        )
        return at_level.union_all(without_status)
    return at_level


def level_rate(session: Session, merchant_id: int, membership_id: int) -> tuple[int, str] | None:
    """(rate in basis points, level name) of a member's current level (one query)."""
    row = session.connection().execute(
        _sql(session).level_rate, {"membership_id": membership_id, "merchant_id": merchant_id}
    ).first()
    return (row[0], row[1]) if row else None


def on_purchase(session: Session, merchant: Merchant, purchase: Purchase, settings: dict) -> None:
    """After the sale's commit (its outbox row, in the worker's transaction): the buyer's level,
    their referrer's, and badges. Running it again for the same purchase changes nothing.

    The buyer's level and badges come from one query (``_facts``) and one upsert; a referrer's
    level (when friends count) from one more of each.
    """
    now = purchase.created_at or utcnow()
    month_start = local_month_start(now, network_zone(merchant.network))
    facts = _facts(session, merchant, purchase.membership_id, settings, utcnow(), month_start)
    _store_level(session, merchant.id, purchase.membership_id, facts.position, facts.value, purchase.id)
    _announce_level_change(session, merchant, purchase.membership_id, facts, "purchase", purchase.id)
    if settings["basis"] == "referrals":
        referrer = session.scalar(select(Membership.referrer_id).where(Membership.id == purchase.membership_id))
        if referrer is not None:
            lifted = _facts(session, merchant, referrer, settings, utcnow(), month_start)
            _store_level(session, merchant.id, referrer, lifted.position, lifted.value, purchase.id)
            _announce_level_change(session, merchant, referrer, lifted, "referral", purchase.id)
    award_badges(session, merchant, purchase, settings, facts)


def on_refund(session: Session, merchant: Merchant, purchase: Purchase, settings: dict) -> None:
    now = utcnow()
    month_start = local_month_start(now, network_zone(merchant.network))
    facts = _facts(session, merchant, purchase.membership_id, settings, now, month_start)
    _store_level(session, merchant.id, purchase.membership_id, facts.position, facts.value, None)
    _announce_level_change(session, merchant, purchase.membership_id, facts, "refund", purchase.id)
    if settings["basis"] == "referrals":
        referrer = session.scalar(select(Membership.referrer_id).where(Membership.id == purchase.membership_id))
        if referrer is not None:
            lifted = _facts(session, merchant, referrer, settings, now, month_start)
            _store_level(session, merchant.id, referrer, lifted.position, lifted.value, None)
            _announce_level_change(session, merchant, referrer, lifted, "refund", purchase.id)


def _months_back(day: date, count: int) -> list[tuple[int, int]]:
    months, year, month = [], day.year, day.month
    for _step in range(count):
        months.append((year, month))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return months


def award_badges(
    session: Session, merchant: Merchant, purchase: Purchase, settings: dict, facts: _Facts | None = None,
) -> list[str]:
    """Badges earned by this purchase; each once per member (UNIQUE, insert-or-ignore).

    ``facts`` (from ``on_purchase``) already hold the badges and the visits; without them they
    are read here.
    """
    earned: list[str] = []
    now = purchase.created_at or utcnow()
    month_start = local_month_start(now, network_zone(merchant.network))
    if facts is None:
        facts = _facts(session, merchant, purchase.membership_id, settings, utcnow(), month_start)
    # The visits and whether this is the month's first visit: a streak can only be completed
    # by a month's first visit, so the streak query runs only then.
    have, visits, this_month = facts.badges, facts.visits, facts.this_month
    if visits >= 1 and "first_purchase" not in have:
        earned.append("first_purchase")
    if visits >= 10 and "tenth_visit" not in have:
        earned.append("tenth_visit")
    if "monthly_streak" not in have and this_month == 1:
        zone = network_zone(merchant.network)  # months as the street counts them
        months = _months_back(local_date(now, zone), settings["streak_months"])
        oldest = local_month_start(now, zone, months_back=len(months) - 1)
        moments = session.scalars(
            select(Purchase.created_at).where(Purchase.membership_id == purchase.membership_id,
                                              Purchase.refunded_at.is_(None), Purchase.created_at >= oldest)
        ).all()
        seen = {(day.year, day.month) for day in (local_date(moment, zone) for moment in moments)}
        if all(month in seen for month in months):
            earned.append("monthly_streak")
    # The count of shops only grows with a first visit here, so the network query runs only then.
    if "good_neighbour" not in have and visits == 1:
        user_id = select(Membership.user_id).where(Membership.id == purchase.membership_id).scalar_subquery()
        shops = session.scalar(
            select(func.count(func.distinct(Purchase.merchant_id)))
            .join(Membership, Membership.id == Purchase.membership_id)
            .join(Merchant, Merchant.id == Purchase.merchant_id)
            .where(Membership.user_id == user_id, Merchant.network_id == merchant.network_id,
                   Purchase.refunded_at.is_(None))
        )
        if shops >= settings["neighbour_merchants"]:
            earned.append("good_neighbour")
    if earned:
        session.execute(
            upsert_insert(session)(Badge.__table__).values([
                {"merchant_id": merchant.id, "membership_id": purchase.membership_id, "badge": badge,
                 "earned_at": utcnow()} for badge in earned
            ]).on_conflict_do_nothing()
        )
    return earned


def badges_of(session: Session, membership_id: int) -> list[Badge]:
    return list(session.scalars(select(Badge).where(Badge.membership_id == membership_id).order_by(Badge.earned_at)))


def mark_seen(session: Session, status_id: int) -> None:
    """The level-up message was shown once; a trivial write, committed."""
    with unit_of_work(session):
        session.execute(update(Status).where(Status.id == status_id).values(level_up_seen=True)
                        .execution_options(synchronize_session=False))


def claim_level_up_emails(session: Session, purchase_id: int) -> list[Status]:
    """Claim the e-mails of the level-ups a purchase made (the buyer's, and a referrer's when
    friends count), each once: a guarded UPDATE per status, so a retried task sends nothing."""
    claimed = []
    for status in session.scalars(
        select(Status).where(Status.level_up_purchase_id == purchase_id, Status.level_up_emailed.is_(False))
    ).all():
        done = session.execute(
            update(Status).where(Status.id == status.id, Status.level_up_emailed.is_(False))
            .values(level_up_emailed=True).execution_options(synchronize_session=False)
        ).rowcount
        if done:
            claimed.append(status)
    return claimed


@dataclass(frozen=True)
class Progress:
    current: Level | CardLevel
    next: Level | CardLevel | None
    value: int
    missing: int


def progress(session: Session, merchant: Merchant, status: Status | None, settings: dict) -> Progress | None:
    return _progress(levels(session, merchant.id), status)


def _progress(level_rows: list, status: Status | CardStatus | None) -> Progress | None:
    if not level_rows:
        return None
    effective = status.effective if status else 0
    value = status.metric if status else 0
    current = next((lvl for lvl in level_rows if lvl.position == effective), level_rows[0])
    upcoming = next((lvl for lvl in level_rows if lvl.position > effective), None)
    missing = max(0, upcoming.threshold - value) if upcoming else 0
    return Progress(current, upcoming, value, missing)


# --------------------------------------------------------------------------- a member's card


@dataclass(frozen=True)
class CardLevel:
    position: int
    name: str
    threshold: int
    cashback_bp: int


@dataclass(frozen=True)
class CardStatus:
    """What a card shows of a member's stored status."""

    id: int
    position: int
    held_position: int
    metric: int
    level_up_seen: bool
    downgrade_to: int | None
    downgrade_on: date | None

    @property
    def effective(self) -> int:
        return max(self.position, self.held_position)


@dataclass(frozen=True)
class CardBadge:
    badge: str
    earned_at: datetime


@dataclass(frozen=True)
class Card:
    """A member's level, progress and badges at one merchant (``progress`` None: no levels)."""

    level_rows: list[CardLevel]
    status: CardStatus | None
    progress: Progress | None
    badges: list[CardBadge]


class _CardStatements:
    """The card's statements, built once per dialect and run on the session's connection."""

    def __init__(self, dialect: str) -> None:
        lv, st, bg = Level.__table__, Status.__table__, Badge.__table__
        # Every level of the merchant, each row carrying the member's status (NULLs without one).
        merchants = Merchant.__table__
        self.levels = (
            select(lv.c.position, lv.c.name, lv.c.threshold, level_rate_column(),
                   st.c.id, st.c.position.label("status_position"), st.c.held_position, st.c.metric,
                   st.c.level_up_seen, st.c.downgrade_to, st.c.downgrade_on)
            .select_from(lv.join(merchants, merchants.c.id == lv.c.merchant_id)
                         .outerjoin(st, st.c.membership_id == bindparam("membership_id")))
            .where(lv.c.merchant_id == bindparam("merchant_id"))
            .order_by(lv.c.position)
        )
        self.badges = (
            select(bg.c.badge, bg.c.earned_at).where(bg.c.membership_id == bindparam("membership_id"))
            .order_by(bg.c.earned_at, bg.c.id)
        )


_card_sql = per_dialect(_CardStatements)


def card(session: Session, merchant_id: int, membership_id: int) -> Card:
    """What the wallet card and the customer's portrait show: two statements, badges read only
    when the merchant has levels (without them the card shows nothing)."""
    sql, connection = _card_sql(session), session.connection()
    params = {"merchant_id": merchant_id, "membership_id": membership_id}
    rows = connection.execute(sql.levels, params).all()
    if not rows:
        return Card([], None, None, [])
    level_rows = [CardLevel(*row[:4]) for row in rows]
    first = rows[0]
    status = None if first[4] is None else CardStatus(*first[4:])
    badges = [CardBadge(badge, earned_at) for badge, earned_at in connection.execute(sql.badges, params)]
    return Card(level_rows, status, _progress(level_rows, status), badges)


def check_levels(session: Session, merchant: Merchant, settings: dict, today: date | None = None) -> int:
    """Periodic: recompute from scratch; apply the downgrade policy to drops caused by time.

    Refunds lower levels at once, so a drop found here comes from purchases leaving the window:
    without downgrades the level is kept; with them it is announced and applied 30 days later,
    at most once per period. Returns the number of stored levels that differed (logged).
    """
    now = utcnow()
    today = today or local_date(now, network_zone(merchant.network))
    with unit_of_work(session):
        level_rows = levels(session, merchant.id)
        mismatches = 0
        for status in session.scalars(select(Status).where(Status.merchant_id == merchant.id)).all():
            value = metric(session, merchant, status.membership_id, settings, now)
            computed = position_for(level_rows, value)
            status.metric = value
            if computed > status.position:
                mismatches += 1
                log.warning("gamification: membership %s level %s, data says %s; fixed",
                            status.membership_id, status.position, computed)
                recompute(session, merchant, status.membership_id, settings, None, level_rows)
                continue
            if computed == status.position:
                continue
            if not settings["downgrades"]:
                status.held_position = max(status.held_position, status.position)
                status.position = computed
                continue
            period = period_key(settings["window"], now)
            if status.downgrade_on is None:
                if status.last_downgrade_period != period:
                    status.downgrade_to = computed
                    status.downgrade_on = today + timedelta(days=DOWNGRADE_NOTICE_DAYS)
            elif status.downgrade_on <= today:
                status.position = computed
                status.held_position = 0
                status.downgrade_to = status.downgrade_on = None
                status.last_downgrade_period = period
    return mismatches


@dataclass(frozen=True)
class Overview:
    distribution: list[tuple[str, int]]
    close: list[tuple[str, str, int]]  # (customer, next level, missing)
    extra_points: int  # points given above the base rate by level rates


def overview(session: Session, merchant: Merchant, settings: dict) -> Overview:
    from webapp.plugin_api import User

    level_rows = levels(session, merchant.id)
    counts = dict(session.execute(
        select(case((Status.held_position > Status.position, Status.held_position), else_=Status.position),
               func.count())
        .where(Status.merchant_id == merchant.id).group_by(
            case((Status.held_position > Status.position, Status.held_position), else_=Status.position))
    ).all())
    members = session.scalar(select(func.count()).select_from(Membership).where(Membership.merchant_id == merchant.id))
    with_status = sum(counts.values())
    counts[0] = counts.get(0, 0) + max(0, members - with_status)
    distribution = [(level.name, counts.get(level.position, 0)) for level in level_rows]
    close = []
    for level in level_rows[1:]:
        below = level_rows[level.position - 1] if level.position - 1 < len(level_rows) else None
        if below is None:
            continue
        gap = level.threshold - below.threshold
        rows = session.execute(
            select(User.name, Status.metric)
            .join(Membership, Membership.id == Status.membership_id).join(User, User.id == Membership.user_id)
            .where(Status.merchant_id == merchant.id, Status.position == below.position,
                   Status.held_position <= below.position,
                   Status.metric >= level.threshold - gap // 5)
            .order_by(Status.metric.desc()).limit(10)
        ).all()
        close.extend((name, level.name, level.threshold - value) for name, value in rows)
    point_value = merchant.network.point_value_minor
    extra = session.scalar(
        select(func.coalesce(func.sum(
            (Purchase.earn_rate_bp - merchant.cashback_bp) * Purchase.amount_paid / 10000 / point_value), 0))
        .where(Purchase.merchant_id == merchant.id, Purchase.refunded_at.is_(None),
               Purchase.earn_rate_bp > merchant.cashback_bp)
    )
    return Overview(distribution, close[:25], int(extra or 0))


# --------------------------------------------------------------------------- levels from history


@dataclass(frozen=True)
class Backfill:
    """What computing every member's level from their history gave: members per level name
    (lowest first) and the badges newly given."""

    per_level: list[tuple[str, int]]
    badges_given: int

    @property
    def above_first(self) -> int:
        return sum(count for _name, count in self.per_level[1:])


def backfill(session: Session, merchant: Merchant, settings: dict | None = None, now: datetime | None = None) -> Backfill:
    """Every member's level and badges from their purchase history within the level window, in
    a few set-based statements whatever the number of members (inside the caller's transaction).

    Used when the plugin is switched on and when the levels or their rules change: a customer
    who has spent enough is at their level at once instead of starting at the bottom. A rise is
    shown once on the card like any level-up (no e-mail); a fall corrects the data.
    """
    from webapp.plugin_api import plugin_settings

    settings = settings or plugin_settings(merchant, "gamification")
    now = now or utcnow()
    session.flush()
    values = _member_values(merchant, settings, now)
    lv, st = Level.__table__, Status.__table__
    position = (
        select(func.coalesce(func.max(lv.c.position), 0))
        .where(lv.c.merchant_id == merchant.id, lv.c.threshold <= values.c.value)
        .scalar_subquery()
    )
    insert = upsert_insert(session)
    rows = select(
        literal(merchant.id, Integer), values.c.membership_id, position, literal(0, Integer), values.c.value,
        case((position > 0, literal(now, st.c.reached_at.type)), else_=null()),
        case((position > 0, False), else_=True), literal(True),
    ).where(values.c.membership_id.is_not(None))
    statement = insert(st).from_select(
        ["merchant_id", "membership_id", "position", "held_position", "metric", "reached_at",
         "level_up_seen", "level_up_emailed"],
        rows,
    )
    new = statement.excluded
    rises = and_(new.position > st.c.position, new.position > st.c.held_position)
    climbed_back = and_(st.c.downgrade_to.is_not(None), new.position > st.c.downgrade_to)
    session.execute(statement.on_conflict_do_update(
        index_elements=[st.c.membership_id],
        set_={
            "position": new.position,
            "metric": new.metric,
            "downgrade_to": case((climbed_back, null()), else_=st.c.downgrade_to),
            "downgrade_on": case((climbed_back, null()), else_=st.c.downgrade_on),
            "reached_at": case((rises, new.reached_at), else_=st.c.reached_at),
            "level_up_purchase_id": case((rises, null()), else_=st.c.level_up_purchase_id),
            "level_up_seen": case((rises, False), else_=st.c.level_up_seen),
        },
    ))
    given = _backfill_badges(session, merchant, settings, now)
    counts = dict(session.execute(
        select(Status.position, func.count()).where(Status.merchant_id == merchant.id).group_by(Status.position)
    ).all())
    per_level = [(level.name, counts.get(level.position, 0)) for level in levels(session, merchant.id)]
    return Backfill(per_level, given)


def backfill_in_words(result: Backfill) -> str:
    """What ``backfill`` did, for the owner."""
    levels_text = ", ".join(f"{name}: {count}" for name, count in result.per_level)
    return _("Every customer's level was computed from their purchase history (%(levels)s); "
             "%(badges)s badges given for past visits.", levels=levels_text, badges=result.badges_given)


def _member_values(merchant: Merchant, settings: dict, now: datetime):
    """A subquery of (membership_id, value, visits) for every member of the merchant: the level
    metric within the window and the live visits of all time."""
    p, m = Purchase.__table__, Membership.__table__
    start = window_start(settings["window"], now)
    in_window = p.c.created_at >= start if start is not None else None
    live = and_(p.c.membership_id == m.c.id, p.c.refunded_at.is_(None))
    visits = func.count(p.c.id)
    basis = settings["basis"]
    value = _purchase_metric(p, basis, in_window) if basis != "referrals" else literal(0, Integer)
    per_member = (
        select(m.c.id.label("membership_id"), value.label("value"), visits.label("visits"))
        .select_from(m.outerjoin(p, live))
        .where(m.c.merchant_id == merchant.id)
        .group_by(m.c.id)
    )
    if basis != "referrals" or not setting_usable(merchant, PLUGIN.name, "basis"):
        return per_member.subquery("member_values")
    # Friends count: friends with a live purchase here (in the window), per referrer.
    friend, bought = m.alias("friend"), p.alias("bought")
    conditions = [bought.c.refunded_at.is_(None), bought.c.merchant_id == merchant.id,
                  friend.c.referrer_id.is_not(None)]
    if start is not None:
        conditions.append(bought.c.created_at >= start)
    friends = (
        select(friend.c.referrer_id.label("referrer_id"), func.count(func.distinct(friend.c.id)).label("friends"))
        .select_from(friend.join(bought, bought.c.membership_id == friend.c.id))
        .where(*conditions).group_by(friend.c.referrer_id)
        .subquery("friends")
    )
    base = per_member.subquery("base")
    return (
        select(base.c.membership_id, func.coalesce(friends.c.friends, 0).label("value"), base.c.visits)
        .select_from(base.outerjoin(friends, friends.c.referrer_id == base.c.membership_id))
        .subquery("member_values")
    )


def _backfill_badges(session: Session, merchant: Merchant, settings: dict, now: datetime) -> int:
    """The badges the history already earned, each once (insert-or-ignore); returns how many
    were new."""
    b, p, m = Badge.__table__, Purchase.__table__, Membership.__table__
    before = session.scalar(select(func.count()).select_from(b).where(b.c.merchant_id == merchant.id))
    values = _member_values(merchant, {**settings, "basis": "visits", "window": "lifetime"}, now)
    insert = upsert_insert(session)
    columns = ["merchant_id", "membership_id", "badge", "earned_at"]
    earned_at = literal(now, b.c.earned_at.type)
    for badge, visits in (("first_purchase", 1), ("tenth_visit", 10)):
        session.execute(insert(b).from_select(columns, select(
            literal(merchant.id, Integer), values.c.membership_id, literal(badge), earned_at,
        ).where(values.c.visits >= visits)).on_conflict_do_nothing())
    # Good neighbour: live purchases at enough businesses of the network (one of them here).
    shops = (
        select(m.c.user_id.label("user_id"), func.count(func.distinct(p.c.merchant_id)).label("shops"))
        .select_from(m.join(p, p.c.membership_id == m.c.id).join(Merchant.__table__, Merchant.id == p.c.merchant_id))
        .where(Merchant.network_id == merchant.network_id, p.c.refunded_at.is_(None))
        .group_by(m.c.user_id)
        .subquery("shops")
    )
    here = m.alias("here")
    session.execute(insert(b).from_select(columns, select(
        literal(merchant.id, Integer), here.c.id, literal("good_neighbour"), earned_at,
    ).select_from(here.join(shops, shops.c.user_id == here.c.user_id).join(values, values.c.membership_id == here.c.id))
     .where(here.c.merchant_id == merchant.id, values.c.visits >= 1,
            shops.c.shops >= settings["neighbour_merchants"])).on_conflict_do_nothing())
    # A monthly streak: months in the street's time zone, so one read of the sale times here.
    zone = network_zone(merchant.network)
    months: dict[int, set[tuple[int, int]]] = {}
    for membership_id, moment in session.execute(
        select(p.c.membership_id, p.c.created_at).where(p.c.merchant_id == merchant.id, p.c.refunded_at.is_(None))
    ):
        day = local_date(moment, zone)
        months.setdefault(membership_id, set()).add((day.year, day.month))
    streak = settings["streak_months"]
    streakers = [
        membership_id for membership_id, seen in months.items()
        if any(all(month in seen for month in _months_back(date(year, month, 1), streak)) for year, month in seen)
    ]
    if streakers:
        session.execute(insert(b).values([
            {"merchant_id": merchant.id, "membership_id": membership_id, "badge": "monthly_streak", "earned_at": now}
            for membership_id in streakers
        ]).on_conflict_do_nothing())
    after = session.scalar(select(func.count()).select_from(b).where(b.c.merchant_id == merchant.id))
    return after - before
