"""Deals, tiers, joining and leaving, closing at the deadline, vouchers at the till, ideas, figures."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager, joinedload, selectinload

from plugins.group_deals.models import (
    MAX_ANSWER,
    MAX_DESCRIPTION,
    MAX_IDEA,
    MAX_TITLE,
    Deal,
    Idea,
    Pledge,
    Tier,
    Vote,
    Voucher,
)
from webapp.plugin_api import (
    Conflict,
    LedgerReason,
    LedgerReasonKind,
    Membership,
    Merchant,
    NeighbourlyError,
    NotFound,
    Posting,
    Purchase,
    PurchaseAdjustment,
    PurchaseDeclined,
    User,
    ValidationFailed,
    codes,
    merchant_ids_with_plugin,
    money,
    outbox,
    parse_money,
    post,
    public_url,
    send_email,
    unit_of_work,
    utcnow,
)

PLUGIN_NAME = "group_deals"

# The reason this plugin writes on ledger rows, rendered in the reader's language.
IDEA_REWARD = "group_deals.idea"  # {"idea": the idea's text, "id": its id}
LEDGER_REASONS = (
    LedgerReasonKind(
        IDEA_REWARD, lambda p: _("Your idea became a group deal: %(idea)s", idea=p["idea"]),
        {"idea": "Bulk honey from the Almaty hills", "id": 5},
    ),
)
MIN_TIERS, MAX_TIERS = 2, 5
MAX_PRICE = 10**10
MAX_PARTICIPANTS = 100_000
MAX_QUANTITY = 100
MAX_REDEEM_DAYS = 365
MAX_REWARD = 1_000_000
CODE_SYMBOLS = 16  # 80 random bits, as the network's certificates
QR_PREFIX = "neighbourly:deal:"


class TooManyAttempts(NeighbourlyError):
    """Too many wrong voucher codes; wait a minute and try again."""

    status_code = 429


class VoucherRefused(PurchaseDeclined):
    """The voucher cannot be used."""


# --------------------------------------------------------------------------- tiers


@dataclass(frozen=True)
class TierStep:
    participants: int
    price: int


def reached_tier(tiers: list[TierStep], participants: int) -> TierStep | None:
    """The lowest-priced tier ``participants`` people reach, or ``None`` below the minimum tier."""
    reached = None
    for tier in tiers:
        if tier.participants <= participants:
            reached = tier
    return reached


def next_tier(tiers: list[TierStep], participants: int) -> TierStep | None:
    """The first tier not reached yet (``None`` once the lowest price is reached)."""
    for tier in tiers:
        if tier.participants > participants:
            return tier
    return None


@dataclass(frozen=True)
class Outcome:
    """What closing a deal decides: the final price (``None``: cancelled) and who gets a voucher."""

    final_price: int | None
    winners: tuple[int, ...]  # pledge ids
    released: tuple[int, ...]


def decide(tiers: list[TierStep], pledges: list[tuple[int, str]]) -> Outcome:
    """Everyone in the deal (``(pledge id, kind)``) counts towards the tiers; the final price is
    the lowest tier reached. Best-price-only pledges are released unless that is the lowest tier
    of all; below the minimum tier the deal is cancelled and everybody released."""
    final = reached_tier(tiers, len(pledges))
    ids = tuple(pledge_id for pledge_id, _kind in pledges)
    if final is None:
        return Outcome(None, (), ids)
    lowest = final == tiers[-1]
    winners = tuple(pledge_id for pledge_id, kind in pledges if kind == "current" or lowest)
    return Outcome(final.price, winners, tuple(i for i in ids if i not in set(winners)))


def steps(deal: Deal) -> list[TierStep]:
    return [TierStep(tier.participants, tier.price) for tier in deal.tiers]


@dataclass(frozen=True)
class Progress:
    """What the deal page says about where the deal stands."""

    participants: int
    current: TierStep | None
    upcoming: TierStep | None
    lowest: TierStep
    more_needed: int  # people until ``upcoming`` (0 when there is none)
    spots_left: int | None


def progress(deal: Deal) -> Progress:
    tiers = steps(deal)
    upcoming = next_tier(tiers, deal.participants)
    spots = None if deal.max_participants is None else max(deal.max_participants - deal.participants, 0)
    return Progress(
        participants=deal.participants,
        current=reached_tier(tiers, deal.participants),
        upcoming=upcoming,
        lowest=tiers[-1],
        more_needed=(upcoming.participants - deal.participants) if upcoming else 0,
        spots_left=spots,
    )


# --------------------------------------------------------------------------- the owner's deals


@dataclass(frozen=True)
class DealInput:
    title: str
    description: str
    regular_price: int
    tiers: tuple[TierStep, ...]
    max_participants: int | None
    max_quantity: int
    deadline: datetime
    redeem_days: int


def _money(errors: dict, name: str, text: str | None, currency: str) -> int | None:
    try:
        value = parse_money(text or "", currency)
    except ValueError as error:
        errors[name] = str(error)
        return None
    if value <= 0:
        errors[name] = _("Enter an amount greater than zero.")
        return None
    if value > MAX_PRICE:
        errors[name] = _("That amount is too large; check the number.")
        return None
    return value


def _is_number(text: str) -> bool:
    """Plain ASCII digits only (``"²".isdigit()`` is true, yet ``int("²")`` fails)."""
    return text.isascii() and text.isdigit()


def _whole(errors: dict, name: str, text: str | None, low: int, high: int, required: bool) -> int | None:
    text = (text or "").strip()
    if not text:
        if required:
            errors[name] = _("Enter a number.")
        return None
    if not _is_number(text):
        errors[name] = _("Enter a whole number.")
        return None
    value = int(text)
    if value < low or value > high:
        errors[name] = _("Enter a number from %(low)s to %(high)s.", low=low, high=high)
        return None
    return value


def _deadline(errors: dict, text: str | None, zone, now: datetime) -> datetime | None:
    text = (text or "").strip()
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        errors["deadline"] = _("Enter the deadline as a date and time.")
        return None
    moment = local.replace(tzinfo=zone) if local.tzinfo is None else local
    if moment <= now:
        errors["deadline"] = _("The deadline is in the past; choose a moment after now.")
        return None
    if moment > now + timedelta(days=365):
        errors["deadline"] = _("The deadline must be within a year.")
        return None
    return moment


def clean_deal(form: dict[str, str], currency: str, zone, now: datetime | None = None) -> DealInput:
    """Check the owner's form; every mistake is explained in words next to its field."""
    now = now or utcnow()
    errors: dict[str, str] = {}
    title = (form.get("title") or "").strip()
    if not title:
        errors["title"] = _("Give the deal a title.")
    elif len(title) > MAX_TITLE:
        errors["title"] = _("At most %(count)s characters.", count=MAX_TITLE)
    description = (form.get("description") or "").strip().replace("\r\n", "\n")
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = _("At most %(count)s characters.", count=MAX_DESCRIPTION)
    regular = _money(errors, "regular_price", form.get("regular_price"), currency)
    tiers: list[TierStep] = []
    for number in range(1, MAX_TIERS + 1):
        people_text = (form.get(f"tier{number}_participants") or "").strip()
        price_text = (form.get(f"tier{number}_price") or "").strip()
        if not people_text and not price_text:
            continue
        people = _whole(errors, f"tier{number}", people_text, 1, MAX_PARTICIPANTS, True)
        price = _money(errors, f"tier{number}", price_text, currency)
        if people is None or price is None:
            continue
        if tiers and people <= tiers[-1].participants:
            errors[f"tier{number}"] = _(
                "Each tier needs more people than the one before (%(people)s).",
                people=tiers[-1].participants,
            )
        elif tiers and price >= tiers[-1].price:
            errors[f"tier{number}"] = _(
                "Each tier's price must be lower than the one before (%(price)s): the tiers must fall.",
                price=money(tiers[-1].price, currency),
            )
        elif regular is not None and price >= regular:
            errors[f"tier{number}"] = _(
                "The price %(price)s is not below the regular price %(regular)s.",
                price=money(price, currency), regular=money(regular, currency),
            )
        else:
            tiers.append(TierStep(people, price))
    if not any(key.startswith("tier") for key in errors) and not MIN_TIERS <= len(tiers) <= MAX_TIERS:
        errors["tiers"] = _("Give two to five price tiers.")
    max_participants = _whole(
        errors, "max_participants", form.get("max_participants"), 1, MAX_PARTICIPANTS, False
    )
    if max_participants is not None and tiers and max_participants < tiers[-1].participants:
        errors["max_participants"] = _(
            "The maximum is below the last tier (%(people)s people): that price could never be reached.",
            people=tiers[-1].participants,
        )
    max_quantity = _whole(errors, "max_quantity", form.get("max_quantity") or "1", 1, MAX_QUANTITY, True)
    deadline = _deadline(errors, form.get("deadline"), zone, now)
    redeem_days = _whole(errors, "redeem_days", form.get("redeem_days") or "14", 1, MAX_REDEEM_DAYS, True)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors=errors)
    return DealInput(title, description, regular, tuple(tiers), max_participants, max_quantity,
                     deadline, redeem_days)


def _apply(deal: Deal, data: DealInput) -> None:
    deal.title, deal.description = data.title, data.description
    deal.regular_price = data.regular_price
    deal.max_participants, deal.max_quantity = data.max_participants, data.max_quantity
    deal.deadline, deal.redeem_days = data.deadline, data.redeem_days
    deal.tiers = [
        Tier(position=index, participants=step.participants, price=step.price)
        for index, step in enumerate(data.tiers, start=1)
    ]


def create_draft(session: Session, merchant: Merchant, data: DealInput, idea_id: int | None = None) -> Deal:
    with unit_of_work(session):
        deal = Deal(merchant_id=merchant.id, status="draft", idea_id=idea_id)
        _apply(deal, data)
        session.add(deal)
    return deal


def owner_deal(session: Session, merchant: Merchant, deal_id: int) -> Deal:
    deal = session.scalar(select(Deal).where(Deal.id == deal_id, Deal.merchant_id == merchant.id))
    if deal is None:
        raise NotFound(_("No such deal here."))
    return deal


def update_draft(session: Session, merchant: Merchant, deal_id: int, data: DealInput) -> Deal:
    """Drafts change freely; a published deal's terms are frozen (they would cheat those who joined)."""
    deal = owner_deal(session, merchant, deal_id)
    if deal.status != "draft":
        raise Conflict(_("This deal is published; its tiers and terms can no longer change."))
    with unit_of_work(session):
        session.execute(update(Tier).where(Tier.deal_id == deal.id).values(position=-Tier.id))
        session.flush()
        _apply(deal, data)
    return deal


def set_photo(session: Session, merchant: Merchant, deal_id: int, filename: str | None) -> str | None:
    """Record the deal's photo file; returns the file it replaced (for the caller to remove)."""
    deal = owner_deal(session, merchant, deal_id)
    if deal.status not in ("draft", "open"):
        raise Conflict(_("This deal is over; its photo can no longer change."))
    with unit_of_work(session):
        previous, deal.photo_filename = deal.photo_filename, filename
    return previous


def delete_draft(session: Session, merchant: Merchant, deal_id: int) -> str | None:
    deal = owner_deal(session, merchant, deal_id)
    if deal.status != "draft":
        raise Conflict(_("Only drafts can be deleted; a published deal stays in the records."))
    photo = deal.photo_filename
    with unit_of_work(session):
        session.delete(deal)
    return photo


def publish(session: Session, merchant: Merchant, deal_id: int, now: datetime | None = None) -> Deal:
    """Open a draft to customers (once); rewards the idea it came from, exactly once."""
    now = now or utcnow()
    deal = owner_deal(session, merchant, deal_id)
    if deal.deadline <= now:
        raise ValidationFailed(_("The deadline is in the past; edit the draft and choose a later one."))
    with unit_of_work(session):
        changed = session.execute(
            update(Deal)
            .where(Deal.id == deal.id, Deal.status == "draft")
            .values(status="open", published_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not changed:
            raise Conflict(_("This deal is already published."))
        if deal.idea_id is not None:
            _reward_proposer(session, merchant, deal.idea_id, now)
    session.refresh(deal)
    return deal


def owner_deals(session: Session, merchant: Merchant) -> list[Deal]:
    return list(session.scalars(
        select(Deal).where(Deal.merchant_id == merchant.id)
        .order_by(case((Deal.status.in_(("draft", "open")), 0), else_=1), Deal.deadline.desc(), Deal.id.desc())
        .limit(200)
    ))


# --------------------------------------------------------------------------- customers


@lru_cache(maxsize=1)
def _open_deals_statement():
    """Open deals of some merchants, soonest first; built once (the dashboard and the wallet run it)."""
    return (
        select(Deal).options(selectinload(Deal.tiers))
        .where(Deal.merchant_id.in_(bindparam("merchant_ids", expanding=True)), Deal.status == "open",
               Deal.deadline > bindparam("now"))
        .order_by(Deal.deadline, Deal.id).limit(bindparam("limit"))
    )


def open_deals(session: Session, merchant_ids: list[int], now: datetime | None = None, limit: int = 20) -> list[Deal]:
    now = now or utcnow()
    if not merchant_ids:
        return []
    return list(session.scalars(
        _open_deals_statement(), {"merchant_ids": list(merchant_ids), "now": now, "limit": limit}
    ))


def directory_deals(session: Session, network_id: int, now: datetime | None = None, limit: int = 12) -> list[Deal]:
    """Open deals of the network's active merchants that have the plugin switched on, soonest first."""
    now = now or utcnow()
    return list(session.scalars(
        select(Deal)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .options(contains_eager(Deal.merchant), selectinload(Deal.tiers))
        .where(
            Merchant.network_id == network_id, Merchant.status == "active",
            Merchant.id.in_(merchant_ids_with_plugin(PLUGIN_NAME)),
            Deal.status == "open", Deal.deadline > now,
        )
        .order_by(Deal.deadline, Deal.id).limit(limit)
    ))


def public_deal(session: Session, merchant: Merchant, deal_id: int) -> Deal:
    """A deal customers may see: published (open or over), of this merchant."""
    deal = session.scalar(select(Deal).where(
        Deal.id == deal_id, Deal.merchant_id == merchant.id, Deal.status != "draft"
    ))
    if deal is None:
        raise NotFound(_("No such deal here."))
    return deal


def count_view(session: Session, deal_id: int) -> None:
    """One more view of the deal page (for the owner's conversion figure)."""
    with unit_of_work(session):
        session.execute(
            update(Deal).where(Deal.id == deal_id).values(views=Deal.views + 1)
            .execution_options(synchronize_session=False)
        )


def my_pledge(session: Session, deal_id: int, user_id: int) -> Pledge | None:
    return session.scalar(select(Pledge).where(Pledge.deal_id == deal_id, Pledge.user_id == user_id))


def _closed_reason(deal: Deal, now: datetime) -> str | None:
    if deal.status == "draft":
        return _("This deal is not published.")
    if deal.status == "cancelled":
        return _("This deal was cancelled: too few people joined.")
    if deal.status == "closed" or deal.deadline <= now:
        return _("This deal is closed: its deadline has passed.")
    return None


def parse_quantity(text: Any, deal: Deal) -> int:
    text = str(text if text is not None else "1").strip() or "1"
    if not _is_number(text.lstrip("-")) or int(text) < 1:
        raise ValidationFailed(_("The quantity must be a whole number of at least 1."), field="quantity")
    if int(text) > deal.max_quantity:
        raise ValidationFailed(
            _("At most %(count)s per customer in this deal.", count=deal.max_quantity), field="quantity"
        )
    return int(text)


def join(
    session: Session, merchant: Merchant, deal_id: int, user_id: int, quantity: Any = 1,
    kind: str = "current", now: datetime | None = None,
) -> Pledge:
    """Join a deal once: a repeated request (double click) returns the same pledge unchanged.

    The deal row is taken first by one guarded UPDATE (open, before the deadline, room left),
    then the pledge is written; the database refuses a second pledge of the same person.
    """
    now = now or utcnow()
    deal = public_deal(session, merchant, deal_id)
    reason = _closed_reason(deal, now)
    if reason:
        raise Conflict(reason)
    if kind not in ("current", "best"):
        raise ValidationFailed(_("Choose how you join: at the current price or best price only."))
    quantity = parse_quantity(quantity, deal)
    membership = session.scalar(select(Membership).where(
        Membership.user_id == user_id, Membership.merchant_id == merchant.id, Membership.left_at.is_(None)
    ))
    if membership is None:
        raise Conflict(_("Get the card of %(name)s first; then you can join its deals.", name=merchant.name))
    existing = my_pledge(session, deal.id, user_id)
    if existing is not None and existing.status == "active":
        if (existing.quantity, existing.kind) != (quantity, kind):
            with unit_of_work(session):
                # Take the deal row as joining does, so a change cannot slip in while it closes.
                still_open = session.execute(
                    update(Deal).where(Deal.id == deal.id, Deal.status == "open", Deal.deadline > now)
                    .values(participants=Deal.participants).execution_options(synchronize_session=False)
                ).rowcount
                if not still_open:
                    raise Conflict(_("This deal is closed: its deadline has passed."))
                existing.quantity, existing.kind = quantity, kind
        return existing
    try:
        with unit_of_work(session):
            taken = session.execute(
                update(Deal)
                .where(
                    Deal.id == deal.id, Deal.status == "open", Deal.deadline > now,
                    (Deal.max_participants.is_(None)) | (Deal.participants < Deal.max_participants),
                )
                .values(participants=Deal.participants + 1)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not taken:
                session.refresh(deal)  # why not: closed meanwhile, or full
                raise Conflict(_closed_reason(deal, now) or _("This deal is full: no places are left."))
            if existing is None:
                pledge = Pledge(deal_id=deal.id, user_id=user_id, membership_id=membership.id,
                                quantity=quantity, kind=kind, status="active", joined_at=now)
                session.add(pledge)
                session.flush()
            else:
                back = session.execute(
                    update(Pledge).where(Pledge.id == existing.id, Pledge.status == "left")
                    .values(status="active", quantity=quantity, kind=kind, joined_at=now, left_at=None)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if not back:
                    raise _AlreadyIn
                pledge = existing
    except (IntegrityError, _AlreadyIn):
        # The twin request joined first (the block gave our place back): answer with its pledge.
        pledge = my_pledge(session, deal.id, user_id)
        if pledge is None or pledge.status != "active":
            raise Conflict(_("Your request crossed another one; try again.")) from None
        return pledge
    session.refresh(pledge)
    return pledge


class _AlreadyIn(Exception):
    pass


class _AlreadyOut(Exception):
    pass


def leave(session: Session, merchant: Merchant, deal_id: int, user_id: int, now: datetime | None = None) -> None:
    """Leave before the deadline; the place goes back to the deal."""
    now = now or utcnow()
    deal = public_deal(session, merchant, deal_id)
    pledge = my_pledge(session, deal.id, user_id)
    if pledge is None or pledge.status not in ("active", "left"):
        raise Conflict(_("You are not in this deal."))
    if pledge.status == "left":
        return  # already out: a repeated click changes nothing
    try:
        with unit_of_work(session):
            freed = session.execute(
                update(Deal)
                .where(Deal.id == deal.id, Deal.status == "open", Deal.deadline > now, Deal.participants > 0)
                .values(participants=Deal.participants - 1)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not freed:
                raise Conflict(_("The deadline has passed; the deal can no longer be left."))
            out = session.execute(
                update(Pledge).where(Pledge.id == pledge.id, Pledge.status == "active")
                .values(status="left", left_at=now).execution_options(synchronize_session=False)
            ).rowcount
            if not out:
                raise _AlreadyOut
    except _AlreadyOut:
        return  # a twin request left first: the block gave back the place freed twice


def pledges_of(session: Session, user_id: int, merchant_id: int) -> list[Pledge]:
    return list(session.scalars(
        select(Pledge).join(Deal, Deal.id == Pledge.deal_id)
        .where(Pledge.user_id == user_id, Deal.merchant_id == merchant_id, Pledge.status == "active")
    ))


# --------------------------------------------------------------------------- closing


def due_deals(session: Session, now: datetime | None = None) -> list[int]:
    now = now or utcnow()
    return list(session.scalars(
        select(Deal.id).where(Deal.status == "open", Deal.deadline <= now).order_by(Deal.id).limit(500)
    ))


def _secret() -> bytes:
    return hmac.new(current_app.config["SECRET_KEY"].encode(), b"group_deals:voucher", hashlib.sha256).digest()


def voucher_code(nonce: str) -> str:
    """The voucher's code, derived from its nonce with the app's secret (a database copy alone
    cannot produce it): 80 bits as 16 Crockford symbols and a check symbol."""
    bits = int.from_bytes(hmac.new(_secret(), nonce.encode(), hashlib.sha256).digest()[:10], "big")
    payload = "".join(codes.ALPHABET[(bits >> (5 * index)) & 31] for index in range(CODE_SYMBOLS))
    return payload + codes.check_symbol(payload)


def code_hash(code: str) -> str:
    return codes.keyed_hash(code, current_app.config["CODE_HASH_KEY"])


def display_code(voucher: Voucher) -> str:
    return codes.group(voucher_code(voucher.nonce))


def deal_link(merchant: Merchant, deal: Deal) -> str:
    return public_url("group_deals.deal", merchant_slug=merchant.slug, deal_id=deal.id)


def close_deal(session: Session, deal_id: int, now: datetime | None = None) -> str | None:
    """Close one deal whose deadline has passed, exactly once: the guarded UPDATE from ``open``
    lets one run through; a second (another worker, a rerun) changes and sends nothing.

    Returns the new status (``closed``/``cancelled``) or ``None`` when nothing was done.
    """
    now = now or utcnow()
    with unit_of_work(session):
        return _close(session, deal_id, now)


def _close(session: Session, deal_id: int, now: datetime) -> str | None:
    row = session.execute(
        update(Deal)
        .where(Deal.id == deal_id, Deal.status == "open", Deal.deadline <= now)
        .values(status="closed", closed_at=now)
        .returning(Deal.participants)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:  # closed already (another worker, a rerun): nothing was written
        return None
    deal = session.get(Deal, deal_id)
    session.refresh(deal)
    merchant = session.get(Merchant, deal.merchant_id)
    pledges = list(session.scalars(
        select(Pledge).where(Pledge.deal_id == deal.id, Pledge.status == "active").order_by(Pledge.id)
    ))
    outcome = decide(steps(deal), [(pledge.id, pledge.kind) for pledge in pledges])
    status = "closed" if outcome.final_price is not None else "cancelled"
    deal.status, deal.final_price = status, outcome.final_price
    winners = set(outcome.winners)
    expires = deal.deadline + timedelta(days=deal.redeem_days)
    codes_for: dict[int, str] = {}
    for pledge in pledges:
        pledge.status = "won" if pledge.id in winners else "released"
        if pledge.id in winners:
            nonce = secrets.token_hex(16)
            code = voucher_code(nonce)
            codes_for[pledge.id] = code
            session.add(Voucher(
                deal_id=deal.id, pledge_id=pledge.id, merchant_id=merchant.id, user_id=pledge.user_id,
                nonce=nonce, code_hash=code_hash(code), quantity=pledge.quantity,
                regular_price=deal.regular_price, price=outcome.final_price, issued_at=now,
                expires_at=expires,
            ))
    session.flush()
    _tell_everyone(session, merchant, deal, pledges, codes_for, expires)
    outbox.record_event(session, merchant, "deal.closed", {
        "id": deal.id, "status": status, "title": deal.title, "participants": row.participants,
        "final_price": outcome.final_price, "regular_price": deal.regular_price,
        "vouchers": len(winners), "released": len(outcome.released),
        "closed_at": now.isoformat(),
    })
    return status


def _tell_everyone(session, merchant, deal, pledges, codes_for, expires) -> None:
    users = {user.id: user for user in session.scalars(
        select(User).where(User.id.in_([pledge.user_id for pledge in pledges]))
    )}
    currency = merchant.network.currency
    link = deal_link(merchant, deal)
    for pledge in pledges:
        user = users.get(pledge.user_id)
        if user is None or not user.email:
            continue
        with force_locale(user.locale or "en"):
            if deal.status == "cancelled":
                subject = _("The group deal “%(title)s” did not take place", title=deal.title)
                text = _(
                    "Too few people joined “%(title)s” at %(merchant)s before the deadline, so the "
                    "purchase did not take place. Nothing is owed and nothing was charged.\n\n%(link)s",
                    title=deal.title, merchant=merchant.name, link=link,
                )
            elif pledge.id in codes_for:
                subject = _("Your voucher for “%(title)s”", title=deal.title)
                text = _(
                    "The group deal “%(title)s” at %(merchant)s happened: %(count)s people joined "
                    "and the final price is %(price)s per unit (regularly %(regular)s).\n\n"
                    "Your voucher for %(quantity)s: %(code)s\nShow it at the till by %(expires)s; it "
                    "is also in your wallet with a QR code.\n\n%(link)s",
                    title=deal.title, merchant=merchant.name, count=deal.participants,
                    price=money(deal.final_price, currency), regular=money(deal.regular_price, currency),
                    quantity=pledge.quantity, code=codes.group(codes_for[pledge.id]),
                    expires=expires.date().isoformat(), link=link,
                )
            else:
                subject = _("The group deal “%(title)s” closed above the best price", title=deal.title)
                text = _(
                    "The group deal “%(title)s” at %(merchant)s closed at %(price)s per unit, not at "
                    "its lowest price. You joined for the best price only, so you are released: "
                    "nothing is owed.\n\n%(link)s",
                    title=deal.title, merchant=merchant.name, price=money(deal.final_price, currency),
                    link=link,
                )
        send_email(user.email, subject, text)


def close_due(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Close every deal past its deadline (the periodic task and the CLI); safe to run anywhere."""
    counts = {"closed": 0, "cancelled": 0}
    for deal_id in due_deals(session, now):
        status = close_deal(session, deal_id, now)
        if status:
            counts[status] += 1
    return counts


def expire_vouchers(session: Session, now: datetime | None = None) -> int:
    now = now or utcnow()
    with unit_of_work(session):
        count = session.execute(
            update(Voucher).where(Voucher.status == "issued", Voucher.expires_at <= now)
            .values(status="expired").execution_options(synchronize_session=False)
        ).rowcount
    return count


# --------------------------------------------------------------------------- vouchers at the till


def vouchers_at_till(session: Session, merchant: Merchant, user_id: int, now: datetime | None = None) -> list[Voucher]:
    now = now or utcnow()
    return list(session.scalars(
        select(Voucher).where(
            Voucher.user_id == user_id, Voucher.merchant_id == merchant.id,
            Voucher.status == "issued", Voucher.expires_at > now,
        ).order_by(Voucher.expires_at, Voucher.id)
    ))


def wallet_overview(session: Session, user_id: int, now: datetime | None = None) -> dict[str, dict[int, list]]:
    """The customer's vouchers and the open deals of the merchants whose card they hold, by
    merchant id: three statements (vouchers, deals, their tiers) for a whole wallet."""
    now = now or utcnow()
    vouchers_statement, deals_statement = _wallet_statements()
    vouchers: dict[int, list[Voucher]] = {}
    for voucher in session.scalars(vouchers_statement, {"user_id": user_id}):
        vouchers.setdefault(voucher.merchant_id, []).append(voucher)
    deals: dict[int, list[Deal]] = {}
    for deal in session.scalars(deals_statement, {"user_id": user_id, "now": now}):
        deals.setdefault(deal.merchant_id, []).append(deal)
    return {"vouchers": vouchers, "deals": deals}


@lru_cache(maxsize=1)
def _wallet_statements():
    """``wallet_overview``'s vouchers and deals statements, built once (every wallet visit)."""
    user_id = bindparam("user_id")
    vouchers = (
        select(Voucher).options(joinedload(Voucher.deal)).where(Voucher.user_id == user_id)
        .order_by(case((Voucher.status == "issued", 0), else_=1), Voucher.expires_at.desc()).limit(200)
    )
    member_of = select(Membership.merchant_id).where(Membership.user_id == user_id, Membership.left_at.is_(None))
    deals = (
        select(Deal).options(selectinload(Deal.tiers))
        .where(Deal.merchant_id.in_(member_of), Deal.status == "open", Deal.deadline > bindparam("now"))
        .order_by(Deal.deadline, Deal.id).limit(200)
    )
    return vouchers, deals


def _not_valid() -> VoucherRefused:
    # One answer for unknown codes, other people's vouchers and other merchants' alike.
    return VoucherRefused(_("This voucher code is not valid for this customer."))


def extract_code(text: str) -> str:
    text = (text or "").strip()
    if text.lower().startswith(QR_PREFIX):
        text = text[len(QR_PREFIX):]
    return codes.normalize(text, CODE_SYMBOLS)


def find_for_till(
    session: Session, merchant: Merchant, membership: Membership, options: dict[str, Any],
    on_failed_lookup=None, now: datetime | None = None,
) -> Voucher | None:
    """The voucher the cashier picked or typed, or ``None`` when the form names none (then no
    statement is run: a sale without a voucher costs this plugin nothing)."""
    typed = str(options.get("group_deal_code") or "").strip()
    picked = str(options.get("group_deal_voucher") or "").strip()
    if not typed and not picked:
        return None
    now = now or utcnow()
    if typed:
        try:
            code = extract_code(typed)
        except codes.InvalidCode:
            raise VoucherRefused(_("The voucher code is mistyped; check every character and try again.")) from None
        if on_failed_lookup:
            on_failed_lookup(failed=False)
        voucher = session.scalar(select(Voucher).where(Voucher.code_hash == code_hash(code)))
        if voucher is None or voucher.user_id != membership.user_id or voucher.merchant_id != merchant.id:
            if on_failed_lookup:
                on_failed_lookup(failed=True)
            raise _not_valid()
    else:
        if not _is_number(picked) or len(picked) > 18:
            raise _not_valid()
        voucher = session.scalar(select(Voucher).where(
            Voucher.id == int(picked), Voucher.user_id == membership.user_id, Voucher.merchant_id == merchant.id
        ))
        if voucher is None:
            raise _not_valid()
    if voucher.status == "redeemed":
        raise VoucherRefused(_("This voucher has already been used."))
    if voucher.status == "expired" or voucher.expires_at <= now:
        raise VoucherRefused(_("This voucher expired on %(date)s.", date=voucher.expires_at.date().isoformat()))
    return voucher


def redeem_in_purchase(
    session: Session, merchant: Merchant, voucher: Voucher, now: datetime | None = None,
) -> PurchaseAdjustment:
    """Consume the voucher exactly once (one guarded UPDATE inside the purchase transaction):
    the bill drops by the regular price minus the deal price, per unit. The adjustment's
    ``data`` names the voucher, which ``record_redemption`` links to the purchase row."""
    now = now or utcnow()
    changed = session.execute(
        update(Voucher)
        .where(Voucher.id == voucher.id, Voucher.status == "issued", Voucher.expires_at > now)
        .values(status="redeemed", redeemed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        raise VoucherRefused(_("This voucher has already been used."))
    title = session.scalar(select(Deal.title).where(Deal.id == voucher.deal_id))
    saving = (voucher.regular_price - voucher.price) * voucher.quantity
    label = _("Group deal “%(title)s”", title=title)
    return PurchaseAdjustment(
        source=PLUGIN_NAME, label=label, amount=saving, kind="discount", data={"voucher_id": voucher.id}
    )


def record_redemption(
    session: Session, purchase: Purchase, adjustments: Sequence[PurchaseAdjustment] = ()
) -> None:
    """Link the voucher the sale consumed (its adjustment's ``data``) to the purchase row; a
    sale without one of this plugin's adjustments runs no statement."""
    for adjustment in adjustments:
        voucher_id = adjustment.data.get("voucher_id") if adjustment.source == PLUGIN_NAME else None
        if voucher_id is not None:
            session.execute(
                update(Voucher).where(Voucher.id == voucher_id).values(redeemed_purchase_id=purchase.id)
                .execution_options(synchronize_session=False)
            )


def undo_for_refund(session: Session, purchase: Purchase, now: datetime | None = None) -> None:
    """A refunded purchase gives its voucher back (expired if its window has passed meanwhile)."""
    now = now or utcnow()
    session.execute(
        update(Voucher).where(Voucher.redeemed_purchase_id == purchase.id, Voucher.status == "redeemed")
        .values(
            status=case((Voucher.expires_at > now, "issued"), else_="expired"),
            redeemed_purchase_id=None, redeemed_at=None,
        )
        .execution_options(synchronize_session=False)
    )


def redeemed_with(session: Session, purchase_id: int) -> list[Voucher]:
    return list(session.scalars(select(Voucher).where(Voucher.redeemed_purchase_id == purchase_id)))


# --------------------------------------------------------------------------- ideas


def propose_idea(session: Session, merchant: Merchant, user_id: int, text: str) -> Idea:
    text = (text or "").strip()
    if not text:
        raise ValidationFailed(_("Write what you would like %(name)s to offer.", name=merchant.name))
    if len(text) > MAX_IDEA:
        raise ValidationFailed(_("At most %(count)s characters.", count=MAX_IDEA))
    membership = session.scalar(select(Membership).where(
        Membership.user_id == user_id, Membership.merchant_id == merchant.id, Membership.left_at.is_(None)
    ))
    if membership is None:
        raise Conflict(_("Get the card of %(name)s first; then you can propose ideas.", name=merchant.name))
    with unit_of_work(session):
        idea = Idea(merchant_id=merchant.id, user_id=user_id, membership_id=membership.id, text=text)
        session.add(idea)
    return idea


def ideas_by_votes(session: Session, merchant_id: int, limit: int = 100) -> list[Idea]:
    return list(session.scalars(
        select(Idea).where(Idea.merchant_id == merchant_id)
        .order_by(Idea.votes.desc(), Idea.created_at.desc(), Idea.id.desc()).limit(limit)
    ))


def my_votes(session: Session, user_id: int, idea_ids: list[int]) -> set[int]:
    if not idea_ids:
        return set()
    return set(session.scalars(select(Vote.idea_id).where(Vote.user_id == user_id, Vote.idea_id.in_(idea_ids))))


def get_idea(session: Session, merchant: Merchant, idea_id: int) -> Idea:
    idea = session.scalar(select(Idea).where(Idea.id == idea_id, Idea.merchant_id == merchant.id))
    if idea is None:
        raise NotFound(_("No such idea here."))
    return idea


def vote(session: Session, merchant: Merchant, idea_id: int, user_id: int, wanted: bool) -> Idea:
    """Set this person's vote (for, or taken back); repeating the same choice changes nothing."""
    idea = get_idea(session, merchant, idea_id)
    member = session.scalar(select(Membership.id).where(
        Membership.user_id == user_id, Membership.merchant_id == merchant.id, Membership.left_at.is_(None)
    ))
    if member is None:
        raise Conflict(_("Get the card of %(name)s first; then you can vote.", name=merchant.name))
    try:
        with unit_of_work(session):
            if wanted:
                session.add(Vote(idea_id=idea.id, user_id=user_id))
                session.flush()
                delta = 1
            else:
                removed = session.execute(
                    Vote.__table__.delete().where(Vote.idea_id == idea.id, Vote.user_id == user_id)
                ).rowcount
                if not removed:
                    raise _Unchanged
                delta = -1
            session.execute(
                update(Idea).where(Idea.id == idea.id).values(votes=Idea.votes + delta)
                .execution_options(synchronize_session=False)
            )
    except (IntegrityError, _Unchanged):
        return idea  # already voted (one vote per person), or no vote to take back
    session.refresh(idea)
    return idea


class _Unchanged(Exception):
    pass


def answer_idea(session: Session, merchant: Merchant, idea_id: int, text: str) -> Idea:
    idea = get_idea(session, merchant, idea_id)
    text = (text or "").strip()
    if not text:
        raise ValidationFailed(_("Write an answer."))
    if len(text) > MAX_ANSWER:
        raise ValidationFailed(_("At most %(count)s characters.", count=MAX_ANSWER))
    with unit_of_work(session):
        idea.answer = text
        if idea.status == "open":
            idea.status = "answered"
    return idea


def idea_to_draft(session: Session, merchant: Merchant, idea_id: int, data: DealInput, reward_text: str) -> Deal:
    """Turn an idea into a draft deal; its proposer gets ``reward`` points when the deal is published."""
    idea = get_idea(session, merchant, idea_id)
    if idea.status == "dealt":
        raise Conflict(_("This idea has already become a deal."))
    errors: dict[str, str] = {}
    reward = _whole(errors, "reward_points", reward_text or "0", 0, MAX_REWARD, True)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors=errors)
    with unit_of_work(session):
        idea.status, idea.reward_points = "dealt", reward
        deal = create_draft(session, merchant, data, idea_id=idea.id)
    return deal


def _reward_proposer(session: Session, merchant: Merchant, idea_id: int, now: datetime) -> None:
    """Pay the proposer once: the guarded stamp lets one caller through."""
    idea = session.get(Idea, idea_id)
    if idea is None or not idea.reward_points or idea.membership_id is None:
        return
    stamped = session.execute(
        update(Idea).where(Idea.id == idea_id, Idea.rewarded_at.is_(None)).values(rewarded_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not stamped:
        return
    member = session.get(Membership, idea.membership_id)
    if member is None or member.left_at is not None:
        return
    post(session, [Posting(
        member.id, merchant.id, "reward", idea.reward_points,
        LedgerReason(IDEA_REWARD, {"idea": idea.text, "id": idea.id}), source=PLUGIN_NAME,
        object_ref=f"group_deals:idea:{idea.id}",
    )], now)


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class DealFigures:
    deal: Deal
    joined: int  # everyone who pledged, including those who left
    left: int
    released: int
    vouchers: int
    redeemed: int
    units_redeemed: int
    revenue_deal: int  # redeemed units at the final price
    revenue_regular: int  # the same units at the regular price

    @property
    def conversion_pct(self) -> int | None:
        if not self.deal.views:
            return None
        return round(100 * self.joined / self.deal.views)


def figures(session: Session, merchant: Merchant) -> list[DealFigures]:
    deals = [deal for deal in owner_deals(session, merchant) if deal.status != "draft"]
    if not deals:
        return []
    ids = [deal.id for deal in deals]
    pledge_rows = {
        row.deal_id: row for row in session.execute(
            select(
                Pledge.deal_id, func.count().label("joined"),
                func.sum(case((Pledge.status == "left", 1), else_=0)).label("left"),
                func.sum(case((Pledge.status == "released", 1), else_=0)).label("released"),
            ).where(Pledge.deal_id.in_(ids)).group_by(Pledge.deal_id)
        )
    }
    voucher_rows = {
        row.deal_id: row for row in session.execute(
            select(
                Voucher.deal_id, func.count().label("vouchers"),
                func.sum(case((Voucher.status == "redeemed", 1), else_=0)).label("redeemed"),
                func.sum(case((Voucher.status == "redeemed", Voucher.quantity), else_=0)).label("units"),
                func.sum(case((Voucher.status == "redeemed", Voucher.quantity * Voucher.price), else_=0)).label("deal"),
                func.sum(case((Voucher.status == "redeemed", Voucher.quantity * Voucher.regular_price), else_=0)).label("regular"),
            ).where(Voucher.deal_id.in_(ids)).group_by(Voucher.deal_id)
        )
    }
    result = []
    for deal in deals:
        p, v = pledge_rows.get(deal.id), voucher_rows.get(deal.id)
        result.append(DealFigures(
            deal=deal, joined=p.joined if p else 0, left=int(p.left or 0) if p else 0,
            released=int(p.released or 0) if p else 0, vouchers=v.vouchers if v else 0,
            redeemed=int(v.redeemed or 0) if v else 0, units_redeemed=int(v.units or 0) if v else 0,
            revenue_deal=int(v.deal or 0) if v else 0, revenue_regular=int(v.regular or 0) if v else 0,
        ))
    return result


def csv_cell(value: Any) -> Any:
    """Neutralise text a spreadsheet would run as a formula (=, +, -, @, tab, CR)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


# --------------------------------------------------------------------------- privacy


def customer_export(session: Session, user_id: int) -> dict:
    pledges = session.execute(
        select(Deal.title, Pledge.quantity, Pledge.kind, Pledge.status, Pledge.joined_at)
        .join(Deal, Deal.id == Pledge.deal_id).where(Pledge.user_id == user_id)
    ).all()
    ideas = session.scalars(select(Idea).where(Idea.user_id == user_id)).all()
    return {
        "pledges": [
            {"deal": row.title, "quantity": row.quantity, "kind": row.kind, "status": row.status,
             "joined_at": row.joined_at.isoformat()} for row in pledges
        ],
        "ideas": [{"text": idea.text, "votes": idea.votes, "answer": idea.answer} for idea in ideas],
    }


def forget_customer(session: Session, user_id: int) -> None:
    """Ideas lose their author; votes go (they only count); pledges and vouchers stay as records."""
    session.execute(update(Idea).where(Idea.user_id == user_id).values(user_id=None, membership_id=None))
    votes = session.execute(
        select(Vote.idea_id).where(Vote.user_id == user_id)
    ).scalars().all()
    for idea_id in sorted(votes):
        session.execute(update(Idea).where(Idea.id == idea_id, Idea.votes > 0).values(votes=Idea.votes - 1))
    session.execute(Vote.__table__.delete().where(Vote.user_id == user_id))
