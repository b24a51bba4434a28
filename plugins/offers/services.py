"""Segments (one SQL query over a merchant's members), offers sent to them, claims and the report.

A segment is a set of conditions from the owner's form, all of which a member must meet:

- no visit for more than N days: the last purchase was before local midnight N days ago (a member
  who never bought counts when they joined before then);
- visits and/or spend in the last P days (from local midnight P days ago; refunded sales do not
  count), each with an optional minimum and maximum;
- bought a price-list item in the last N days (from local midnight N days ago; the sale's lines
  recorded at the till or through the API; refunded sales do not count);
- birthday month (only customers who gave their birthday, with its consent, have one).

Sending an offer writes every member of the segment as a recipient in one statement; a share of
them, chosen deterministically from the offer and the card (a keyed hash, so nobody can pick it),
is the control group: they get nothing and are recorded, so the report can compare what customers
who got the offer spent afterwards with what comparable customers who did not spent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, case, false, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugins.offers.models import MAX_MESSAGE, MAX_TITLE, OfferClaim, OfferRecipient, SegmentOffer
from webapp.plugin_api import (
    Conflict,
    ConsentRecord,
    LedgerReason,
    LedgerReasonKind,
    Membership,
    Merchant,
    NotFound,
    Posting,
    PriceItem,
    Purchase,
    PurchaseItem,
    RewardUnavailable,
    User,
    ValidationFailed,
    day_start,
    network_zone,
    parse_money,
    post,
    public_url,
    today,
    unit_of_work,
    upsert_insert,
    utcnow,
)

PLUGIN_NAME = "offers"
OFFER_REWARD = "offers.reward"
LEDGER_REASONS = (
    LedgerReasonKind(
        OFFER_REWARD, lambda p: _("Offer: %(title)s", title=p["title"]), {"title": "We miss you", "offer": 3}
    ),
)
MAX_DAYS = 3660
MAX_VISITS = 100_000
MAX_POINTS = 1_000_000
DEFAULT_CONTROL_PERCENT = 10
MAX_CONTROL_PERCENT = 50
VALID_DAYS = 30  # an offer can be claimed for this many days after it was sent
REPEAT_WINDOW = timedelta(days=1)
RECIPIENT_BATCH = 1000


class NeedsConfirmation(Conflict):
    """This segment already got an offer today: confirm to send another."""


# --------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class Criteria:
    """The segment's conditions; ``None`` leaves a condition out. Money in minor units."""

    idle_days: int | None = None
    period_days: int | None = None
    min_visits: int | None = None
    max_visits: int | None = None
    min_spend: int | None = None
    max_spend: int | None = None
    birthday_month: int | None = None
    item_id: int | None = None  # bought this price-list item ...
    item_days: int | None = None  # ... in the last N days
    # Conditions other plugins add (``neighbourly_collect_segment_conditions``): (key, value) pairs.
    extras: tuple[tuple[str, str], ...] = ()

    def canonical(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def fingerprint(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    @property
    def uses_period(self) -> bool:
        return any(
            v is not None
            for v in (self.min_visits, self.max_visits, self.min_spend, self.max_spend)
        )


CRITERIA_FIELDS = (
    "idle_days",
    "period_days",
    "min_visits",
    "max_visits",
    "min_spend",
    "max_spend",
    "birthday_month",
    "item_id",
    "item_days",
    "extras",
)
EXTRA_PREFIX = "c."  # a plugin condition's form field: "c.<key>"


def segment_conditions(merchant: Merchant, session: Session) -> list:
    """The conditions enabled plugins add to the form (a status level), by ``order``."""
    from webapp.plugin_api import hooks_for

    found = []
    hooks = hooks_for(merchant)
    for conditions in hooks.neighbourly_collect_segment_conditions(
        merchant=merchant, session=session
    ):
        found.extend(conditions or [])
    return sorted(found, key=lambda condition: (condition.order, condition.key))


def item_choices(merchant: Merchant, session: Session) -> list[tuple[int, str]]:
    """The merchant's price-list items a segment can name, as (id, name) in list order."""
    return [
        (row.id, row.name)
        for row in session.execute(
            select(PriceItem.id, PriceItem.name)
            .where(PriceItem.merchant_id == merchant.id)
            .order_by(PriceItem.position, PriceItem.id)
        )
    ]


def _whole(errors: dict, form: dict, name: str, low: int, high: int, message: str) -> int | None:
    text = (form.get(name) or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        errors[name] = message
        return None
    if not low <= value <= high:
        errors[name] = message
        return None
    return value


def _amount(errors: dict, form: dict, name: str, currency: str) -> int | None:
    text = (form.get(name) or "").strip()
    if not text:
        return None
    try:
        value = parse_money(text, currency)
    except ValueError as error:
        errors[name] = str(error)
        return None
    if not 0 <= value <= 10**12:
        errors[name] = _("Enter an amount of zero or more.")
        return None
    return value


def parse_criteria(
    form: dict, currency: str, conditions: list | tuple = (), items: list | tuple = ()
) -> tuple[Criteria, dict[str, str]]:
    """The segment from the form (amounts in major units); errors by field name. ``conditions``
    are the plugins' (``segment_conditions``): a value must be one of a condition's choices;
    ``items`` the merchant's price list (``item_choices``): the item must be one of them."""
    errors: dict[str, str] = {}
    item_id = None
    item_text = (form.get("item_id") or "").strip()
    if item_text:
        known = {str(choice): choice for choice, _name in items}
        if item_text not in known:
            errors["item_id"] = _("Choose an item of your price list.")
        else:
            item_id = known[item_text]
    extras = []
    for condition in conditions:
        name = EXTRA_PREFIX + condition.key
        value = (form.get(name) or "").strip()
        if not value:
            continue
        if value not in {choice for choice, _label in condition.choices}:
            errors[name] = _("Choose one of the options.")
            continue
        extras.append((condition.key, value))
    days = _("Enter a whole number of days from 1 to %(max)s.", max=MAX_DAYS)
    visits = _("Enter a whole number of visits from 0 to %(max)s.", max=MAX_VISITS)
    criteria = Criteria(
        idle_days=_whole(errors, form, "idle_days", 1, MAX_DAYS, days),
        period_days=_whole(errors, form, "period_days", 1, MAX_DAYS, days),
        min_visits=_whole(errors, form, "min_visits", 0, MAX_VISITS, visits),
        max_visits=_whole(errors, form, "max_visits", 0, MAX_VISITS, visits),
        min_spend=_amount(errors, form, "min_spend", currency),
        max_spend=_amount(errors, form, "max_spend", currency),
        birthday_month=_whole(errors, form, "birthday_month", 1, 12, _("Choose a month.")),
        item_id=item_id,
        item_days=_whole(errors, form, "item_days", 1, MAX_DAYS, days),
        extras=tuple(sorted(extras)),
    )
    if item_id is not None and criteria.item_days is None and "item_days" not in errors:
        errors["item_days"] = _("Say over how many days the item counts.")
    if (
        criteria.min_visits is not None
        and criteria.max_visits is not None
        and criteria.min_visits > criteria.max_visits
    ):
        errors["max_visits"] = _("The maximum must not be below the minimum.")
    if (
        criteria.min_spend is not None
        and criteria.max_spend is not None
        and criteria.min_spend > criteria.max_spend
    ):
        errors["max_spend"] = _("The maximum must not be below the minimum.")
    if criteria.uses_period and criteria.period_days is None and "period_days" not in errors:
        errors["period_days"] = _("Say over how many days the visits or spend count.")
    return criteria, errors


def criteria_from_json(text: str) -> Criteria:
    values = {name: value for name, value in json.loads(text).items() if name in CRITERIA_FIELDS}
    values["extras"] = tuple(tuple(pair) for pair in values.get("extras") or ())
    return Criteria(**values)


def segment_query(merchant: Merchant, criteria: Criteria, now: datetime | None = None):
    """SELECT (membership id, user id) of the merchant's current members in the segment:
    one statement, whatever the number of members or purchases."""
    now = now or utcnow()
    zone = network_zone(merchant.network)
    local_today = today(zone, now)
    members = Membership.__table__
    query = (
        select(members.c.id, members.c.user_id)
        .join(User.__table__, User.id == members.c.user_id)
        .where(
            members.c.merchant_id == merchant.id,
            members.c.left_at.is_(None),
            User.erased_at.is_(None),
        )
    )
    if criteria.idle_days is not None:
        cutoff = day_start(local_today - timedelta(days=criteria.idle_days), zone)
        query = query.where(
            or_(
                members.c.last_purchase_at < cutoff,
                and_(members.c.last_purchase_at.is_(None), members.c.joined_at < cutoff),
            )
        )
    if criteria.uses_period and criteria.period_days is not None:
        start = day_start(local_today - timedelta(days=criteria.period_days), zone)
        sales = Purchase.__table__
        stats = (
            select(
                sales.c.membership_id,
                func.count().label("visits"),
                func.sum(sales.c.amount).label("spend"),
            )
            .where(
                sales.c.merchant_id == merchant.id,
                sales.c.refunded_at.is_(None),
                sales.c.created_at >= start,
            )
            .group_by(sales.c.membership_id)
            .subquery("period")
        )
        query = query.outerjoin(stats, stats.c.membership_id == members.c.id)
        visits, spend = func.coalesce(stats.c.visits, 0), func.coalesce(stats.c.spend, 0)
        for value, low, high in (
            (visits, criteria.min_visits, criteria.max_visits),
            (spend, criteria.min_spend, criteria.max_spend),
        ):
            if low is not None:
                query = query.where(value >= low)
            if high is not None:
                query = query.where(value <= high)
    if criteria.birthday_month is not None:
        query = query.where(User.birth_month == criteria.birthday_month)
    if criteria.item_id is not None:
        # A subquery of the same statement: the members with a sale (not refunded) since local
        # midnight N days ago that has a line of this item.
        since = day_start(local_today - timedelta(days=criteria.item_days or MAX_DAYS), zone)
        sales, lines = Purchase.__table__, PurchaseItem.__table__
        buyers = (
            select(sales.c.membership_id)
            .join(lines, lines.c.purchase_id == sales.c.id)
            .where(
                lines.c.merchant_id == merchant.id,
                lines.c.price_item_id == criteria.item_id,
                sales.c.merchant_id == merchant.id,
                sales.c.refunded_at.is_(None),
                sales.c.created_at >= since,
            )
        )
        query = query.where(members.c.id.in_(buyers))
    if criteria.extras:
        from webapp.plugin_api import hooks_for

        hooks = hooks_for(merchant)
        for key, value in criteria.extras:
            members_sql = hooks.neighbourly_collect_segment_members(
                merchant=merchant, key=key, value=value
            )
            if members_sql is None:  # its plugin is off now: nobody can be said to meet it
                query = query.where(false())
                continue
            query = query.where(members.c.id.in_(members_sql))
    return query


def segment_members(
    session: Session, merchant: Merchant, criteria: Criteria, now: datetime | None = None
):
    """The segment's (membership id, user id) rows, ordered by membership id."""
    query = segment_query(merchant, criteria, now).order_by(Membership.__table__.c.id)
    return [tuple(row) for row in session.execute(query).all()]


def segment_size(
    session: Session, merchant: Merchant, criteria: Criteria, now: datetime | None = None
) -> int:
    query = segment_query(merchant, criteria, now).subquery("segment")
    return session.scalar(select(func.count()).select_from(query)) or 0


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class OfferInput:
    title: str
    message: str
    kind: str
    points: int
    reward_key: str | None
    control_percent: int


def reward_options(merchant: Merchant, session: Session) -> list:
    """What other plugins let this merchant give (a neighbour's certificate), available ones."""
    from webapp.plugin_api import hooks_for, sorted_by_order  # noqa: F401

    found = []
    for options in hooks_for(merchant).neighbourly_collect_reward_options(
        merchant=merchant, session=session
    ):
        found.extend(option for option in (options or []) if option.available)
    return found


def parse_offer(form: dict, options: list) -> tuple[OfferInput | None, dict[str, str]]:
    errors: dict[str, str] = {}
    title = " ".join((form.get("title") or "").split())
    message = (form.get("message") or "").strip().replace("\r\n", "\n")
    if not title:
        errors["title"] = _("Give the offer a title; customers see it.")
    elif len(title) > MAX_TITLE:
        errors["title"] = _("At most %(max)s characters.", max=MAX_TITLE)
    if len(message) > MAX_MESSAGE:
        errors["message"] = _("At most %(max)s characters.", max=MAX_MESSAGE)
    kind = form.get("kind") or "points"
    points, reward_key = 0, None
    if kind == "points":
        points = (
            _whole(
                errors,
                form,
                "points",
                1,
                MAX_POINTS,
                _("Enter a whole number of points from 1 to %(max)s.", max=MAX_POINTS),
            )
            or 0
        )
        if not points and "points" not in errors:
            errors["points"] = _(
                "Enter a whole number of points from 1 to %(max)s.", max=MAX_POINTS
            )
    elif kind == "certificate":
        reward_key = (form.get("reward_key") or "").strip()
        if reward_key not in {option.key for option in options}:
            errors["reward_key"] = _("Choose a neighbour's certificate.")
    elif kind == "message":
        if not message:
            errors["message"] = _("Write the message.")
    else:
        errors["kind"] = _("Choose what the offer gives.")
    control_text = (form.get("control_percent") or "").strip()
    control = (
        DEFAULT_CONTROL_PERCENT
        if control_text == ""
        else _whole(
            errors,
            form,
            "control_percent",
            0,
            MAX_CONTROL_PERCENT,
            _("Enter a share from 0 to %(max)s percent.", max=MAX_CONTROL_PERCENT),
        )
    )
    if errors:
        return None, errors
    return OfferInput(title, message, kind, points, reward_key, control or 0), {}


def control_order(offer_id: int, membership_id: int, secret: str) -> str:
    """The card's place in the offer's draw: a keyed hash, fixed once the offer exists."""
    return hashlib.sha256(f"{secret}:{offer_id}:{membership_id}".encode()).hexdigest()


def control_count(size: int, percent: int) -> int:
    """How many of ``size`` members are held out (rounded down: a tiny segment may have none)."""
    return size * percent // 100


def send_offer(
    session: Session,
    merchant: Merchant,
    criteria: Criteria,
    data: OfferInput,
    by_user_id: int | None,
    secret: str,
    confirm: bool = False,
    now: datetime | None = None,
    options: list | None = None,
    form_key: str | None = None,
) -> SegmentOffer:
    """Record the offer and its recipients (control group included), queue the e-mails, commit.

    Refuses an empty segment, and the same segment sent less than a day ago unless ``confirm``.
    A ``form_key`` already used (a double click) returns that offer and sends nothing again.
    """
    now = now or utcnow()
    form_key = (form_key or "")[:80] or None
    if form_key is not None:
        sent = _offer_by_key(session, merchant.id, form_key)
        if sent is not None:
            return sent
    members = segment_members(session, merchant, criteria, now)
    if not members:
        raise ValidationFailed(
            _("This segment matches nobody: change the conditions before sending.")
        )
    fingerprint = criteria.fingerprint()
    if not confirm:
        recent = session.scalar(
            select(SegmentOffer.sent_at)
            .where(
                SegmentOffer.merchant_id == merchant.id,
                SegmentOffer.segment_hash == fingerprint,
                SegmentOffer.sent_at > now - REPEAT_WINDOW,
            )
            .order_by(SegmentOffer.sent_at.desc())
            .limit(1)
        )
        if recent is not None:
            raise NeedsConfirmation(
                _("This segment already got an offer in the last 24 hours. Send this one too?")
            )
    label = ""
    if data.kind == "certificate":
        label = next((o.label for o in (options or []) if o.key == data.reward_key), "")
    offer = SegmentOffer(
        merchant_id=merchant.id,
        title=data.title,
        message=data.message,
        kind=data.kind,
        points=data.points,
        reward_key=data.reward_key,
        reward_label=label[:200],
        criteria=criteria.canonical(),
        segment_hash=fingerprint,
        control_percent=data.control_percent,
        created_by_id=by_user_id,
        sent_at=now,
        form_key=form_key,
    )
    try:
        with unit_of_work(session):
            session.add(offer)
            session.flush()
            drawn = sorted(members, key=lambda row: control_order(offer.id, row[0], secret))
            held_out = {row[0] for row in drawn[: control_count(len(members), data.control_percent)]}
            offer.control = len(held_out)
            offer.recipients = len(members) - len(held_out)
            rows = [
                {"offer_id": offer.id, "membership_id": card, "in_control": card in held_out}
                for card, _user in members
            ]
            for start in range(0, len(rows), RECIPIENT_BATCH):
                session.execute(insert(OfferRecipient), rows[start : start + RECIPIENT_BATCH])
            treated_users = [user for card, user in members if card not in held_out]
            _queue_emails(session, merchant, offer, treated_users)
    except IntegrityError:  # the same form, sent by a twin request that got there first
        sent = _offer_by_key(session, merchant.id, form_key) if form_key else None
        if sent is None:
            raise
        return sent
    return offer


def _offer_by_key(session: Session, merchant_id: int, form_key: str) -> SegmentOffer | None:
    return session.scalar(
        select(SegmentOffer).where(
            SegmentOffer.merchant_id == merchant_id, SegmentOffer.form_key == form_key
        )
    )


def _consenting(session: Session, merchant_id: int, user_ids: list[int]) -> set[int]:
    """Users whose latest marketing consent at the merchant is a grant (one statement per batch)."""
    from webapp.plugin_api import MARKETING

    granted: dict[int, bool] = {}
    for start in range(0, len(user_ids), RECIPIENT_BATCH):
        batch = user_ids[start : start + RECIPIENT_BATCH]
        for user_id, value in session.execute(
            select(ConsentRecord.user_id, ConsentRecord.granted)
            .where(
                ConsentRecord.merchant_id == merchant_id,
                ConsentRecord.purpose == MARKETING,
                ConsentRecord.user_id.in_(batch),
            )
            .order_by(ConsentRecord.created_at, ConsentRecord.id)
        ):
            granted[user_id] = bool(value)  # the latest record wins
    return {user_id for user_id, value in granted.items() if value}


def _queue_emails(
    session: Session, merchant: Merchant, offer: SegmentOffer, user_ids: list[int]
) -> None:
    from flask import current_app

    from webapp.plugin_api import outbox
    from webapp.plugin_api import points as format_points

    consenting = sorted(_consenting(session, merchant.id, user_ids))
    if not consenting:
        return
    link = public_url("wallet.index")
    languages = current_app.config["LANGUAGES"]
    messages = []
    for start in range(0, len(consenting), RECIPIENT_BATCH):
        users = session.execute(
            select(User.email, User.name, User.locale).where(
                User.id.in_(consenting[start : start + RECIPIENT_BATCH]), User.erased_at.is_(None)
            )
        ).all()
        for email, name, locale in users:
            if not email or email.lower().endswith(".invalid"):
                continue
            locale = locale or merchant.network.default_locale
            with force_locale(locale if locale in languages else "en"):
                if offer.kind == "points":
                    what = _(
                        "%(points)s points are waiting for you: open your wallet to take them.",
                        points=format_points(offer.points),
                    )
                elif offer.kind == "certificate":
                    what = _(
                        "A certificate is waiting for you: %(label)s. Open your wallet to take it.",
                        label=offer.reward_label,
                    )
                else:
                    what = ""
                text = _(
                    "Hello %(name)s,\n\n%(merchant)s has something for you: %(title)s.",
                    name=(name or "").split(" ")[0],
                    merchant=merchant.name,
                    title=offer.title,
                )
                parts = [text, offer.message, what, _("For you, in your wallet:") + "\n" + link]
                subject = _("%(merchant)s: %(title)s", merchant=merchant.name, title=offer.title)
            messages.append(
                (
                    "email",
                    {
                        "to": email,
                        "subject": subject,
                        "text": "\n\n".join(p for p in parts if p),
                        "html": None,
                        "sender_name": merchant.name,
                        "headers": {},
                    },
                )
            )
    if messages:
        outbox.add_many(session, messages, merchant_id=merchant.id)


# --------------------------------------------------------------------------- the customer's side


def _recipient(session: Session, merchant: Merchant, offer_id: int, membership: Membership):
    row = session.execute(
        select(SegmentOffer, OfferRecipient)
        .join(OfferRecipient, OfferRecipient.offer_id == SegmentOffer.id)
        .where(
            SegmentOffer.id == offer_id,
            SegmentOffer.merchant_id == merchant.id,
            OfferRecipient.membership_id == membership.id,
            OfferRecipient.in_control.is_(False),
        )
    ).first()
    if row is None:
        raise NotFound(_("This offer is not for you."))
    return row


def find_claim(session: Session, offer_id: int, membership_id: int) -> OfferClaim | None:
    return session.scalar(
        select(OfferClaim).where(
            OfferClaim.offer_id == offer_id, OfferClaim.membership_id == membership_id
        )
    )


def open_offer(
    session: Session,
    merchant: Merchant,
    offer_id: int,
    membership: Membership,
    now: datetime | None = None,
) -> tuple[SegmentOffer, OfferClaim | None]:
    """The offer for its recipient; the first view marks it opened (a guarded UPDATE)."""
    offer, recipient = _recipient(session, merchant, offer_id, membership)
    if recipient.opened_at is None:
        with unit_of_work(session):
            session.execute(
                OfferRecipient.__table__.update()
                .where(
                    OfferRecipient.__table__.c.id == recipient.id,
                    OfferRecipient.__table__.c.opened_at.is_(None),
                )
                .values(opened_at=now or utcnow())
            )
    return offer, find_claim(session, offer.id, membership.id)


def is_open(offer: SegmentOffer, now: datetime | None = None) -> bool:
    return (now or utcnow()) < offer.sent_at + timedelta(days=VALID_DAYS)


def claim(
    session: Session,
    merchant: Merchant,
    offer_id: int,
    membership: Membership,
    now: datetime | None = None,
) -> tuple[OfferClaim, bool]:
    """Take the offer: its points (or certificate) are given exactly once per card.

    The claim row's unique (offer, card) pair decides between concurrent clicks: only the
    transaction whose INSERT went in credits the points, in the same transaction. Returns the
    claim and whether this call made it.
    """
    now = now or utcnow()
    offer, recipient = _recipient(session, merchant, offer_id, membership)
    if not is_open(offer, now):
        raise Conflict(_("This offer has ended."))
    table = OfferClaim.__table__
    statement = (
        upsert_insert(session)(table)
        .values(offer_id=offer.id, membership_id=membership.id, reward_ref="", created_at=now)
        .on_conflict_do_nothing(index_elements=[table.c.offer_id, table.c.membership_id])
        .returning(table.c.id)
    )
    with unit_of_work(session):
        claim_id = session.execute(statement).scalar()
        if claim_id is not None:
            _give(session, merchant, offer, recipient, membership, claim_id, now)
    if claim_id is None:  # another click claimed it first: nothing was written
        return find_claim(session, offer_id, membership.id), False
    return session.get(OfferClaim, claim_id), True


def _give(
    session: Session,
    merchant: Merchant,
    offer: SegmentOffer,
    recipient: OfferRecipient,
    membership: Membership,
    claim_id: int,
    now: datetime,
) -> None:
    """Credit the claim just made (points or a certificate) and note what it gave."""
    table = OfferClaim.__table__
    reason = LedgerReason(OFFER_REWARD, {"title": offer.title, "offer": offer.id})
    reference = f"offers:offers_claims:{claim_id}"
    if offer.kind == "points":
        post(
            session,
            [
                Posting(
                    membership.id,
                    merchant.id,
                    "reward",
                    offer.points,
                    reason,
                    source=PLUGIN_NAME,
                    object_ref=reference,
                )
            ],
            moment=now,
        )
    elif offer.kind == "certificate":
        from webapp.plugin_api import hooks_for

        granted = hooks_for(merchant).neighbourly_grant_reward(
            merchant=merchant,
            user=membership.user,
            key=offer.reward_key,
            reason=_("Offer: %(title)s", title=offer.title),
            session=session,
        )
        if granted is None:
            raise RewardUnavailable(_("This certificate cannot be given any more."))
        reference = granted.object_ref
    session.execute(table.update().where(table.c.id == claim_id).values(reward_ref=reference[:120]))
    if recipient.opened_at is None:
        recipient.opened_at = now


@lru_cache(maxsize=1)
def _wallet_offers_statement():
    """``wallet_offers``' statement, built once (every wallet visit runs it)."""
    return (
        select(SegmentOffer, OfferClaim.id)
        .join(OfferRecipient, OfferRecipient.offer_id == SegmentOffer.id)
        .join(Membership, Membership.id == OfferRecipient.membership_id)
        .outerjoin(
            OfferClaim,
            and_(OfferClaim.offer_id == SegmentOffer.id, OfferClaim.membership_id == Membership.id),
        )
        .where(
            Membership.user_id == bindparam("user_id"),
            Membership.left_at.is_(None),
            OfferRecipient.in_control.is_(False),
            SegmentOffer.sent_at > bindparam("since"),
        )
        .order_by(SegmentOffer.sent_at.desc(), SegmentOffer.id.desc())
    )


def wallet_offers(session: Session, user_id: int, now: datetime | None = None) -> dict[int, list]:
    """Open offers for each of the customer's cards (merchant id -> [(offer, claimed)]), newest
    first: one statement for the whole wallet."""
    since = (now or utcnow()) - timedelta(days=VALID_DAYS)
    rows = session.execute(_wallet_offers_statement(), {"user_id": user_id, "since": since}).all()
    found: dict[int, list] = {}
    for offer, claim_id in rows:
        found.setdefault(offer.merchant_id, []).append((offer, claim_id is not None))
    return found


# --------------------------------------------------------------------------- the owner's side


def merchant_offers(session: Session, merchant: Merchant, limit: int = 100) -> list[SegmentOffer]:
    return list(
        session.scalars(
            select(SegmentOffer)
            .where(SegmentOffer.merchant_id == merchant.id)
            .order_by(SegmentOffer.sent_at.desc(), SegmentOffer.id.desc())
            .limit(limit)
        )
    )


def get_offer(session: Session, merchant: Merchant, offer_id: int) -> SegmentOffer:
    offer = session.scalar(
        select(SegmentOffer).where(
            SegmentOffer.id == offer_id, SegmentOffer.merchant_id == merchant.id
        )
    )
    if offer is None:
        raise NotFound(_("No such offer."))
    return offer


@dataclass(frozen=True)
class GroupFigures:
    customers: int
    revenue: int  # minor units since the offer was sent, refunds excluded

    @property
    def per_customer(self) -> int | None:
        return self.revenue // self.customers if self.customers else None


@dataclass(frozen=True)
class Report:
    sent: int
    opened: int
    used: int
    control: GroupFigures
    treated: GroupFigures  # every recipient who got the offer
    users: GroupFigures  # the recipients who used it

    @property
    def uplift_per_customer(self) -> int | None:
        if self.treated.per_customer is None or self.control.per_customer is None:
            return None
        return self.treated.per_customer - self.control.per_customer


def report(session: Session, merchant: Merchant, offer: SegmentOffer) -> Report:
    """Sent / opened / used and revenue since sending, per group: one statement."""
    recipients, claims, sales = OfferRecipient.__table__, OfferClaim.__table__, Purchase.__table__
    used = case((claims.c.id.is_not(None), 1), else_=0)
    revenue = (
        select(sales.c.membership_id, func.sum(sales.c.amount).label("revenue"))
        .where(
            sales.c.merchant_id == merchant.id,
            sales.c.refunded_at.is_(None),
            sales.c.created_at >= offer.sent_at,
        )
        .group_by(sales.c.membership_id)
        .subquery("revenue")
    )
    rows = session.execute(
        select(
            recipients.c.in_control,
            used.label("used"),
            func.count().label("customers"),
            func.count(recipients.c.opened_at).label("opened"),
            func.coalesce(func.sum(revenue.c.revenue), 0).label("revenue"),
        )
        .select_from(recipients)
        .outerjoin(
            claims,
            and_(
                claims.c.offer_id == recipients.c.offer_id,
                claims.c.membership_id == recipients.c.membership_id,
            ),
        )
        .outerjoin(revenue, revenue.c.membership_id == recipients.c.membership_id)
        .where(recipients.c.offer_id == offer.id)
        .group_by(recipients.c.in_control, used)
    ).all()
    control = GroupFigures(0, 0)
    treated_customers = treated_revenue = opened = 0
    users = GroupFigures(0, 0)
    for row in rows:
        if row.in_control:
            control = GroupFigures(
                control.customers + row.customers, control.revenue + int(row.revenue)
            )
            continue
        treated_customers += row.customers
        treated_revenue += int(row.revenue)
        opened += row.opened
        if row.used:
            users = GroupFigures(row.customers, int(row.revenue))
    return Report(
        sent=treated_customers,
        opened=opened,
        used=users.customers,
        control=control,
        treated=GroupFigures(treated_customers, treated_revenue),
        users=users,
    )


# --------------------------------------------------------------------------- privacy


def customer_export(session: Session, user_id: int) -> list[dict]:
    rows = session.execute(
        select(
            SegmentOffer.title,
            SegmentOffer.kind,
            SegmentOffer.sent_at,
            OfferRecipient.opened_at,
            OfferClaim.created_at,
            Merchant.name,
        )
        .join(OfferRecipient, OfferRecipient.offer_id == SegmentOffer.id)
        .join(Membership, Membership.id == OfferRecipient.membership_id)
        .join(Merchant, Merchant.id == SegmentOffer.merchant_id)
        .outerjoin(
            OfferClaim,
            and_(OfferClaim.offer_id == SegmentOffer.id, OfferClaim.membership_id == Membership.id),
        )
        .where(Membership.user_id == user_id, OfferRecipient.in_control.is_(False))
        .order_by(SegmentOffer.sent_at)
    ).all()
    return [
        {
            "merchant": name,
            "offer": title,
            "kind": kind,
            "sent_at": sent.isoformat(),
            "opened_at": opened.isoformat() if opened else None,
            "claimed_at": claimed.isoformat() if claimed else None,
        }
        for title, kind, sent, opened, claimed, name in rows
    ]
