"""Certificate offers, partnerships, issuing, redeeming, gifting, expiry and their economics."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from plugins.cross_marketing.models import (
    MAX_MESSAGE,
    MAX_REASON,
    Certificate,
    CertificateEvent,
    HolderCount,
    Offer,
    Partnership,
)
from webapp.contracts import GrantedReward, PurchaseAdjustment, RewardOption
from webapp.errors import (
    Conflict,
    NeighbourlyError,
    NotFound,
    PurchaseDeclined,
    RewardUnavailable,
    ValidationFailed,
)
from webapp.extensions import upsert_insert
from webapp.formatting import money, parse_money
from webapp.models import Membership, Merchant, MerchantPlugin, Purchase, User
from webapp.models.base import utcnow
from webapp.services import codes

PLUGIN_NAME = "cross_marketing"
CODE_SYMBOLS = 16  # 80 random bits
LIVE = ("issued", "attached")
PAGE_SIZE = 25
MAX_FACE_VALUE = 10**10
MAX_DAYS = 3650
QR_PREFIX = "neighbourly:cert:"
_STASH = "cross_marketing_redeemed"  # session.info key: redemptions waiting for their purchase row


class TooManyAttempts(NeighbourlyError):
    """Too many wrong certificate codes; wait a minute and try again."""

    status_code = 429


class CertificateRefused(PurchaseDeclined):
    """The certificate cannot be used."""


# --------------------------------------------------------------------------- codes


def _secret(purpose: str) -> bytes:
    """A key for one purpose, derived from the app's secret (a database copy alone has none)."""
    return _derive(current_app.config["SECRET_KEY"], purpose)


@lru_cache(maxsize=16)
def _derive(base: str | bytes, purpose: str) -> bytes:
    return hmac.new(base.encode() if isinstance(base, str) else base, purpose.encode(), hashlib.sha256).digest()


def code_hash(code: str) -> str:
    return codes.keyed_hash(code, current_app.config["CODE_HASH_KEY"])


def seal(code: str) -> str:
    """Encrypt a code for the holder's later view: HMAC-SHA256 keystream over a random nonce."""
    nonce = secrets.token_bytes(16)
    stream = hmac.new(_secret("cross_marketing:seal"), nonce, hashlib.sha256).digest()
    data = code.encode()
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream[:len(data)], "big")
    return (nonce + mixed.to_bytes(len(data), "big")).hex()


def unseal(sealed: str) -> str:
    raw = bytes.fromhex(sealed)
    nonce, data = raw[:16], raw[16:]
    stream = hmac.new(_secret("cross_marketing:seal"), nonce, hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(data, stream, strict=False)).decode()


def new_code() -> tuple[str, dict[str, str]]:
    """A fresh code and the columns that store it (hash for lookup, sealed copy, last four)."""
    code = codes.generate(CODE_SYMBOLS)
    return code, {"code_hash": code_hash(code), "code_sealed": seal(code), "code_last4": code[-4:]}


def extract_code(text: str) -> str:
    """The code out of typed text, a scanned ``neighbourly:cert:`` QR or a certificate link."""
    text = (text or "").strip()
    if text.lower().startswith(QR_PREFIX):
        text = text[len(QR_PREFIX):]
    elif "/" in text:
        text = text.rstrip("/").rsplit("/", 1)[-1]
    return codes.normalize(text, CODE_SYMBOLS)  # raises InvalidCode before any lookup


def display_code(certificate: Certificate) -> str:
    return codes.group(unseal(certificate.code_sealed))


# --------------------------------------------------------------------------- offers


@dataclass(frozen=True)
class OfferInput:
    face_value: int
    min_purchase: int
    validity_days: int
    total_cap: int | None
    per_customer_cap: int | None
    fee: int
    message: str
    remainder_policy: str


def _money_field(errors: dict, name: str, text: str | None, currency: str, required: bool) -> int:
    text = (text or "").strip()
    if not text:
        if required:
            errors[name] = _("Enter an amount.")
        return 0
    try:
        value = parse_money(text, currency)
    except ValueError:
        errors[name] = _("Enter the amount as a number, for example 500 or 500.50.")
        return 0
    if value < 0:
        errors[name] = _("The amount cannot be negative.")
    elif value > MAX_FACE_VALUE:
        errors[name] = _("That amount is too large; check the number.")
    return value


def _count_field(errors: dict, name: str, text: str | None, low: int, high: int, required: bool) -> int | None:
    text = (text or "").strip()
    if not text:
        if required:
            errors[name] = _("Enter a whole number.")
        return None
    if not text.isdigit() or len(text) > 9:
        errors[name] = _("Enter a whole number.")
        return None
    value = int(text)
    if value < low or value > high:
        errors[name] = _("Enter a number from %(low)s to %(high)s.", low=low, high=high)
    return value


def clean_offer(form: dict[str, str], currency: str) -> OfferInput:
    """Check every field at once; ``ValidationFailed.details["errors"]`` maps field -> message."""
    errors: dict[str, str] = {}
    face_value = _money_field(errors, "face_value", form.get("face_value"), currency, True)
    if "face_value" not in errors and face_value <= 0:
        errors["face_value"] = _("The certificate must be worth more than zero.")
    min_purchase = _money_field(errors, "min_purchase", form.get("min_purchase"), currency, False)
    fee = _money_field(errors, "fee", form.get("fee"), currency, False)
    validity = _count_field(errors, "validity_days", form.get("validity_days"), 1, MAX_DAYS, True)
    total_cap = _count_field(errors, "total_cap", form.get("total_cap"), 1, 10**7, False)
    per_customer = _count_field(errors, "per_customer_cap", form.get("per_customer_cap"), 1, 1000, False)
    message = " ".join((form.get("message") or "").split())
    if len(message) > MAX_MESSAGE:
        errors["message"] = _("At most %(count)s characters.", count=MAX_MESSAGE)
    policy = form.get("remainder_policy") or "lost"
    if policy not in ("lost", "kept"):
        errors["remainder_policy"] = _("Choose what happens to an unused remainder.")
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    return OfferInput(face_value, min_purchase, validity or 1, total_cap, per_customer, fee, message, policy)


def create_offer(session: Session, issuer: Merchant, form: dict[str, str]) -> Offer:
    data = clean_offer(form, issuer.network.currency)
    offer = Offer(issuer_id=issuer.id, **data.__dict__)
    session.add(offer)
    session.commit()
    return offer


def get_offer(session: Session, issuer: Merchant, offer_id: int) -> Offer:
    """An offer of this issuer; another merchant's offer is as missing as none."""
    offer = session.scalar(select(Offer).where(Offer.id == offer_id, Offer.issuer_id == issuer.id))
    if offer is None:
        raise NotFound(_("No such offer."))
    return offer


def issuer_offers(session: Session, issuer: Merchant) -> list[Offer]:
    return list(session.scalars(select(Offer).where(Offer.issuer_id == issuer.id).order_by(Offer.id.desc())))


def possible_distributors(session: Session, issuer: Merchant) -> list[Merchant]:
    """Active neighbours in the issuer's network (not the issuer itself)."""
    return list(
        session.scalars(
            select(Merchant)
            .where(
                Merchant.network_id == issuer.network_id,
                Merchant.id != issuer.id,
                Merchant.status == "active",
            )
            .order_by(Merchant.name)
        )
    )


# --------------------------------------------------------------------------- partnerships


def invite(session: Session, issuer: Merchant, offer_id: int, distributor_id: Any) -> Partnership:
    """Invite a neighbour to hand out an offer; a declined or ended partnership can be renewed."""
    offer = get_offer(session, issuer, offer_id)
    try:
        wanted = int(distributor_id)
    except (TypeError, ValueError):
        raise ValidationFailed(_("Choose a neighbour to invite."), field="distributor_id") from None
    distributor = session.scalar(
        select(Merchant).where(
            Merchant.id == wanted,
            Merchant.network_id == issuer.network_id,
            Merchant.status == "active",
            Merchant.id != issuer.id,
        )
    )
    if distributor is None:
        raise ValidationFailed(_("Choose an active neighbour from your network."), field="distributor_id")
    partnership = session.scalar(
        select(Partnership).where(
            Partnership.offer_id == offer.id, Partnership.distributor_id == distributor.id
        )
    )
    if partnership is not None:
        if partnership.status in ("invited", "active", "paused"):
            raise Conflict(_("%(name)s is already invited to this offer.", name=distributor.name))
        partnership.status = "invited"
    else:
        partnership = Partnership(offer_id=offer.id, distributor_id=distributor.id, status="invited")
        session.add(partnership)
    partnership.changed_by_id = issuer.id
    session.commit()
    return partnership


def get_partnership(session: Session, merchant: Merchant, partnership_id: int) -> Partnership:
    """A partnership this merchant is a side of (issuer or distributor); otherwise 404."""
    partnership = session.scalar(
        select(Partnership)
        .join(Offer, Offer.id == Partnership.offer_id)
        .options(joinedload(Partnership.offer).joinedload(Offer.issuer), joinedload(Partnership.distributor))
        .where(
            Partnership.id == partnership_id,
            or_(Offer.issuer_id == merchant.id, Partnership.distributor_id == merchant.id),
        )
    )
    if partnership is None:
        raise NotFound(_("No such partnership."))
    return partnership


def clean_rule(form: dict[str, str], currency: str) -> tuple[int, int | None]:
    errors: dict[str, str] = {}
    min_purchase = _money_field(errors, "rule_min_purchase", form.get("rule_min_purchase"), currency, False)
    per_day = _count_field(errors, "max_per_day", form.get("max_per_day"), 1, 100000, False)
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    return min_purchase, per_day


def respond(
    session: Session, distributor: Merchant, partnership_id: int, accept: bool, form: dict[str, str]
) -> Partnership:
    """The distributor accepts (with its rule) or declines an invitation."""
    partnership = get_partnership(session, distributor, partnership_id)
    if partnership.distributor_id != distributor.id:
        raise NotFound(_("No such partnership."))
    if partnership.status != "invited":
        raise Conflict(_("This invitation has already been answered."))
    if accept:
        partnership.min_purchase, partnership.max_per_day = clean_rule(form, distributor.network.currency)
        partnership.status = "active"
    else:
        partnership.status = "declined"
    partnership.changed_by_id = distributor.id
    session.commit()
    return partnership


def set_rule(session: Session, distributor: Merchant, partnership_id: int, form: dict[str, str]) -> Partnership:
    partnership = get_partnership(session, distributor, partnership_id)
    if partnership.distributor_id != distributor.id:
        raise NotFound(_("No such partnership."))
    if partnership.status not in ("active", "paused"):
        raise Conflict(_("Only a running partnership has a rule to change."))
    min_purchase, per_day = clean_rule(form, distributor.network.currency)
    # Guarded: lowering the daily cap below today's count waits until tomorrow's first issue.
    partnership.min_purchase = min_purchase
    if per_day is not None and partnership.issued_on_day > per_day:
        partnership.issued_on_day = per_day
    partnership.max_per_day = per_day
    partnership.changed_by_id = distributor.id
    session.commit()
    return partnership


_TRANSITIONS = {"pause": ("active",), "resume": ("paused",), "end": ("invited", "active", "paused")}
_TARGET = {"pause": "paused", "resume": "active", "end": "ended"}


def change_status(session: Session, merchant: Merchant, partnership_id: int, action: str) -> Partnership:
    """Pause, resume or end, by either side. Ending never touches certificates already issued."""
    partnership = get_partnership(session, merchant, partnership_id)
    if action not in _TRANSITIONS:
        raise ValidationFailed(_("Unknown action."))
    changed = session.execute(
        update(Partnership)
        .where(Partnership.id == partnership.id, Partnership.status.in_(_TRANSITIONS[action]))
        .values(status=_TARGET[action], changed_by_id=merchant.id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        session.rollback()
        raise Conflict(_("This partnership cannot be changed that way any more."))
    session.commit()
    session.refresh(partnership)
    return partnership


def merchant_partnerships(session: Session, merchant: Merchant) -> list[Partnership]:
    """Every partnership the merchant is a side of, newest first."""
    return list(
        session.scalars(
            select(Partnership)
            .join(Offer, Offer.id == Partnership.offer_id)
            .options(joinedload(Partnership.offer).joinedload(Offer.issuer), joinedload(Partnership.distributor))
            .where(or_(Offer.issuer_id == merchant.id, Partnership.distributor_id == merchant.id))
            .order_by(Partnership.id.desc())
        )
    )


# --------------------------------------------------------------------------- issuing



class _Statements:
    """The issuing path's statements, built once on the tables and run on the session's
    connection: a checkout pays for executing them, not for composing them again."""

    def __init__(self) -> None:
        p, o, m = Partnership.__table__, Offer.__table__, Merchant.__table__
        plugins, c, e = MerchantPlugin.__table__, Certificate.__table__, CertificateEvent.__table__
        issuer_enabled = (
            select(plugins.c.id)
            .where(
                plugins.c.merchant_id == o.c.issuer_id,
                plugins.c.plugin_name == PLUGIN_NAME,
                plugins.c.enabled.is_(True),
            )
            .exists()
        )
        # Partnerships a distributor hands certificates out through right now.
        live = (
            select(
                p.c.id, p.c.max_per_day, p.c.counted_day, p.c.issued_on_day, o.c.id.label("offer_id"),
                o.c.issuer_id, o.c.face_value, o.c.validity_days, o.c.per_customer_cap, o.c.total_cap,
                o.c.issued_count, m.c.name.label("issuer_name"),
            )
            .select_from(p.join(o, o.c.id == p.c.offer_id).join(m, m.c.id == o.c.issuer_id))
            .where(
                p.c.distributor_id == bindparam("distributor_id"),
                p.c.status == "active",
                m.c.status == "active",
                issuer_enabled,
            )
            .order_by(o.c.id)
        )
        self.live = live
        self.one_live = live.where(p.c.id == bindparam("partnership_id"))
        self.take_offer = (
            update(o)
            .where(
                o.c.id == bindparam("b_offer_id"),
                or_(o.c.total_cap.is_(None), o.c.issued_count < o.c.total_cap),
            )
            .values(issued_count=o.c.issued_count + 1)
        )
        self.release_offer = (
            update(o)
            .where(o.c.id == bindparam("b_offer_id"), o.c.issued_count > 0)
            .values(issued_count=o.c.issued_count - 1)
        )
        self.take_day = (
            update(p)
            .where(
                p.c.id == bindparam("b_partnership_id"),
                or_(
                    p.c.counted_day.is_(None),
                    p.c.counted_day != bindparam("b_today"),
                    p.c.issued_on_day < p.c.max_per_day,
                ),
            )
            .values(
                issued_on_day=case(
                    (p.c.counted_day == bindparam("b_today"), p.c.issued_on_day + 1), else_=1
                ),
                counted_day=bindparam("b_today"),
            )
        )
        self.release_day = (
            update(p)
            .where(p.c.id == bindparam("b_partnership_id"), p.c.counted_day == bindparam("b_today"))
            .values(issued_on_day=p.c.issued_on_day - 1)
        )
        self.insert_certificate = c.insert().returning(c.c.id)
        self.insert_event = e.insert()
        self._claims: dict[str, object] = {}

    def claim_offers(self, dialect: str):
        """Take one unit of the total cap of every offer the distributor hands out for this bill,
        returning what ``live`` gives for their partnerships: the look-up and the first cap in one
        statement. Offers whose total cap is full are left out. On PostgreSQL the offers are
        locked in ascending id order first (as ``take_offer`` locks them one by one)."""
        statement = self._claims.get(dialect)
        if statement is not None:
            return statement
        p, o, m = Partnership.__table__, Offer.__table__, Merchant.__table__
        plugins = MerchantPlugin.__table__
        distributor_id = bindparam("distributor_id")
        chosen = o.alias("chosen_offer")
        issuer_enabled = (
            select(plugins.c.id)
            .where(plugins.c.merchant_id == chosen.c.issuer_id, plugins.c.plugin_name == PLUGIN_NAME,
                   plugins.c.enabled.is_(True))
            .exists()
        )
        offer_ids = (
            select(chosen.c.id)
            .select_from(p.join(chosen, chosen.c.id == p.c.offer_id).join(m, m.c.id == chosen.c.issuer_id))
            .where(p.c.distributor_id == distributor_id, p.c.status == "active", m.c.status == "active",
                   issuer_enabled, p.c.min_purchase <= bindparam("amount"))
        )
        room = or_(o.c.total_cap.is_(None), o.c.issued_count < o.c.total_cap)
        statement = update(o).where(room).values(issued_count=o.c.issued_count + 1)
        if dialect == "postgresql":
            held = o.alias("held_offer")
            locked = (
                select(held.c.id).where(held.c.id.in_(offer_ids)).order_by(held.c.id)
                .with_for_update(of=held).subquery("locked")
            )
            statement = statement.where(o.c.id == locked.c.id)
        else:  # one writer at a time
            statement = statement.where(o.c.id.in_(offer_ids))
        mine = p.alias("claimed_partnership")

        def partnership(column):  # the distributor's one partnership for the offer (UNIQUE)
            return (
                select(mine.c[column]).where(mine.c.offer_id == o.c.id, mine.c.distributor_id == distributor_id)
                .scalar_subquery().label(column)
            )

        issuer = m.alias("claimed_issuer")
        statement = self._claims[dialect] = statement.returning(
            partnership("id"), partnership("max_per_day"), partnership("counted_day"),
            partnership("issued_on_day"), o.c.id.label("offer_id"), o.c.issuer_id, o.c.face_value,
            o.c.validity_days, o.c.per_customer_cap, o.c.total_cap, o.c.issued_count,
            select(issuer.c.name).where(issuer.c.id == o.c.issuer_id).scalar_subquery().label("issuer_name"),
        )
        return statement


_statements: _Statements | None = None


def _sql() -> _Statements:
    global _statements
    if _statements is None:
        _statements = _Statements()
    return _statements


def _take_caps(session: Session, row, user_id: int, today: date) -> bool:
    """Take one unit of every cap, each by a guarded statement; undo the taken ones on a refusal.

    Locks are taken in one order everywhere (offer, partnership, per-customer counter), so
    concurrent purchases at different neighbours never deadlock.
    """
    if not session.connection().execute(_sql().take_offer, {"b_offer_id": row.offer_id}).rowcount:
        return False
    return _take_other_caps(session, row, user_id, today)


def _take_other_caps(session: Session, row, user_id: int, today: date) -> bool:
    """The caps after the offer's total (taken already): per day, then per customer; a refusal
    gives back what was taken, the offer's unit included."""
    sql, connection = _sql(), session.connection()
    if row.max_per_day is not None:
        taken = connection.execute(sql.take_day, {"b_partnership_id": row.id, "b_today": today}).rowcount
        if not taken:
            connection.execute(sql.release_offer, {"b_offer_id": row.offer_id})
            return False
    if row.per_customer_cap is not None:
        statement = upsert_insert(session)(HolderCount).values(
            offer_id=row.offer_id, user_id=user_id, issued=1
        )
        statement = statement.on_conflict_do_update(
            index_elements=["offer_id", "user_id"],
            set_={"issued": HolderCount.issued + 1},
            where=HolderCount.issued < row.per_customer_cap,
        ).returning(HolderCount.issued)
        if session.execute(statement).first() is None:
            connection.execute(sql.release_offer, {"b_offer_id": row.offer_id})
            if row.max_per_day is not None:
                connection.execute(sql.release_day, {"b_partnership_id": row.id, "b_today": today})
            return False
    return True


def _release_offer(session: Session, offer_id: int) -> None:
    session.connection().execute(_sql().release_offer, {"b_offer_id": offer_id})


@dataclass(frozen=True)
class IssuedCertificate:
    certificate_id: int
    code: str
    issuer_name: str
    face_value: int
    expires_at: datetime


def issue_for_purchase(
    session: Session, distributor: Merchant, purchase: Purchase, user_id: int,
    events: list[dict] | None = None,
) -> list[IssuedCertificate]:
    """Inside the purchase transaction: one certificate per active partnership whose rule is met.

    Nothing here commits; a rolled-back purchase issues nothing. Given ``events``, the "issued"
    events are added to it for the caller to write with its own (``write_events``).
    """
    # The partnerships to hand out through and their offers' total caps in one statement (the
    # look-up and one guarded UPDATE per offer before): one statement fewer a sale that issues.
    claim = _sql().claim_offers(session.get_bind().dialect.name)
    rows = session.connection().execute(
        claim, {"distributor_id": distributor.id, "amount": purchase.amount}
    ).all()
    if not rows:
        return []
    now = purchase.created_at or utcnow()
    issued: list[IssuedCertificate] = []
    for row in sorted(rows, key=lambda found: found.offer_id):
        if _take_other_caps(session, row, user_id, now.date()):
            issued.append(_write_certificate(session, row, distributor.id, user_id, now, purchase.id, "", events))
    return issued


def _write_certificate(
    session: Session, row, distributor_id: int, user_id: int, now: datetime, purchase_id: int | None,
    reason: str, events: list[dict] | None = None,
) -> IssuedCertificate:
    """The certificate and its "issued" event (written now, or added to ``events``), once every
    cap has been taken."""
    sql, connection = _sql(), session.connection()
    code, stored = new_code()
    expires_at = now + timedelta(days=row.validity_days)
    certificate_id = connection.execute(sql.insert_certificate, {
        "offer_id": row.offer_id, "partnership_id": row.id, "issuer_id": row.issuer_id,
        "distributor_id": distributor_id, "holder_id": user_id, "face_value": row.face_value,
        "balance": row.face_value, "status": "issued", "issued_purchase_id": purchase_id,
        "issued_reason": reason, "issued_at": now, "expires_at": expires_at, **stored,
    }).scalar_one()
    event = {
        "certificate_id": certificate_id, "partnership_id": row.id, "issuer_id": row.issuer_id,
        "distributor_id": distributor_id, "kind": "issued", "count": 1,
        "face_value": row.face_value, "value_used": 0, "fee": 0, "purchase_amount": 0,
        "new_customer": False, "purchase_id": purchase_id, "created_at": now,
    }
    if events is None:
        connection.execute(sql.insert_event, event)
    else:
        events.append(event)
    return IssuedCertificate(certificate_id, code, row.issuer_name, row.face_value, expires_at)


# --------------------------------------------------------------------------- certificates as rewards

REWARD_PREFIX = "cross_marketing:partnership:"


def _reward_label(row, currency: str) -> str:
    return _("Certificate for %(value)s at %(issuer)s", value=money(row.face_value, currency),
             issuer=row.issuer_name)


def _has_room(row, today: date) -> bool:
    """Whether every shared cap still has room (the per-customer cap is checked when giving)."""
    if row.total_cap is not None and row.issued_count >= row.total_cap:
        return False
    return not (row.max_per_day is not None and row.counted_day == today and row.issued_on_day >= row.max_per_day)


def reward_options(session: Session, distributor: Merchant) -> list[RewardOption]:
    """One option per live partnership: a neighbour's certificate the distributor may give away."""
    currency, today = distributor.network.currency, utcnow().date()
    rows = session.connection().execute(_sql().live, {"distributor_id": distributor.id}).all()
    options = []
    for row in rows:
        room = _has_room(row, today)
        options.append(RewardOption(
            key=f"{REWARD_PREFIX}{row.id}", label=_reward_label(row, currency), source=PLUGIN_NAME,
            available=room, note="" if room else _("All certificates of this offer are given out for now."),
        ))
    return options


def issue_as_reward(
    session: Session, distributor: Merchant, user_id: int, key: str, reason: str
) -> GrantedReward | None:
    """Inside the caller's transaction: one certificate through the partnership ``key`` names.

    The same caps as at a purchase (total, per day, per customer), taken by the same guarded
    statements; the distributor's purchase threshold does not apply. Nothing here commits.
    """
    if not key.startswith(REWARD_PREFIX):
        return None
    try:
        partnership_id = int(key.removeprefix(REWARD_PREFIX))
    except ValueError:
        return None
    row = session.connection().execute(
        _sql().one_live, {"distributor_id": distributor.id, "partnership_id": partnership_id}
    ).first()
    if row is None:
        raise RewardUnavailable(_("The certificate offered as the reward is no longer handed out."))
    now = utcnow()
    if not _take_caps(session, row, user_id, now.date()):
        raise RewardUnavailable(_("All certificates offered as the reward have been given out."))
    certificate = _write_certificate(session, row, distributor.id, user_id, now, None, reason[:MAX_REASON])
    return GrantedReward(
        key=key, label=_reward_label(row, distributor.network.currency),
        object_ref=f"{PLUGIN_NAME}:certificate:{certificate.certificate_id}",
    )


# --------------------------------------------------------------------------- redeeming at the till


def _not_valid() -> CertificateRefused:
    # One answer for unknown codes, other people's certificates and foreign codes alike.
    return CertificateRefused(_("This certificate code is not valid for this customer."))


def _refusal(certificate: Certificate, merchant: Merchant, now: datetime) -> CertificateRefused | None:
    """A clear reason the holder's own certificate cannot be used here, or ``None``."""
    if certificate.issuer_id != merchant.id:
        return CertificateRefused(
            _("This certificate is for %(name)s and can only be used there.", name=certificate.issuer.name)
        )
    if certificate.status == "redeemed":
        return CertificateRefused(_("This certificate has already been used."))
    if certificate.status == "voided":
        return CertificateRefused(_("This certificate was cancelled because its purchase was refunded."))
    if certificate.status == "expired" or certificate.expires_at <= now:
        return CertificateRefused(
            _("This certificate expired on %(date)s.", date=format_date(certificate.expires_at))
        )
    return None


# The till reads a certificate with what redeeming it shows and checks (its issuer, distributor
# and offer) in one statement: two statements fewer than loading them on first use.
_TILL_LOADS = (joinedload(Certificate.issuer), joinedload(Certificate.distributor), joinedload(Certificate.offer))


def find_for_till(
    session: Session,
    merchant: Merchant,
    membership: Membership,
    options: dict[str, Any],
    on_failed_lookup=None,
) -> Certificate | None:
    """The certificate the cashier chose (typed/scanned code or picked from the list), checked.

    ``on_failed_lookup`` is called before a lookup (to refuse when rate-limited) with
    ``failed=False`` and again with ``failed=True`` when a well-formed code matched nothing of
    this customer's.
    """
    typed = (options.get("certificate") or "").strip()
    picked = (options.get("certificate_id") or "").strip()
    if typed:
        try:
            code = extract_code(typed)
        except codes.InvalidCode:
            raise CertificateRefused(
                _("The certificate code is mistyped; check every character and try again.")
            ) from None
        if on_failed_lookup:
            on_failed_lookup(failed=False)
        certificate = session.scalar(
            select(Certificate)
            .options(*_TILL_LOADS)
            .where(Certificate.code_hash == code_hash(code))
        )
        if certificate is None or certificate.holder_id != membership.user_id:
            if on_failed_lookup:
                on_failed_lookup(failed=True)
            raise _not_valid()
    elif picked:
        if not picked.isdigit():
            raise _not_valid()
        certificate = session.scalar(
            select(Certificate)
            .options(*_TILL_LOADS)
            .where(Certificate.id == int(picked), Certificate.holder_id == membership.user_id)
        )
        if certificate is None:
            raise _not_valid()
    else:
        return None
    refusal = _refusal(certificate, merchant, utcnow())
    if refusal:
        raise refusal
    return certificate


def redeem_in_purchase(
    session: Session,
    merchant: Merchant,
    membership: Membership,
    certificate: Certificate,
    remaining: int,
    amount: int,
    idempotency_key: str,
) -> PurchaseAdjustment:
    """What the certificate pays of the bill (inside the purchase; the till's quote too).

    Nothing is written here: ``record_redemption`` consumes the certificate exactly once, with
    one guarded UPDATE that also links it to the purchase row, in the same transaction.
    """
    offer = certificate.offer
    if amount < offer.min_purchase:
        raise CertificateRefused(_(
            "This certificate needs a bill of at least %(amount)s.",
            amount=money(offer.min_purchase, merchant.network.currency),
        ))
    seen_balance = certificate.balance
    used = min(seen_balance, max(remaining, 0))
    if used <= 0:
        raise CertificateRefused(_("Nothing is left to pay with the certificate."))
    stash = session.info.setdefault(_STASH, {})
    stash[idempotency_key] = {
        "certificate_id": certificate.id,
        "partnership_id": certificate.partnership_id,
        "distributor_id": certificate.distributor_id,
        "holder_id": membership.user_id,
        "seen_balance": seen_balance,
        "used": used,
        "fee": offer.fee,
        "new_customer": membership.visits == 0,
        "keep_rest": offer.remainder_policy == "kept" and used < seen_balance,
    }
    label = _("Certificate from %(name)s", name=certificate.distributor.name)
    return PurchaseAdjustment(source=PLUGIN_NAME, label=label, amount=used, kind="certificate")


def record_redemption(
    session: Session, merchant: Merchant, purchase: Purchase, events: list[dict] | None = None
) -> None:
    """After the purchase row exists: consume the certificate with one guarded UPDATE (exactly
    once: it must still be live, the holder's, this merchant's, unexpired and at the balance the
    bill was computed from; its purchase is set in the same statement), and write the ledger
    event (or add it to ``events``). A refusal rolls the whole purchase back."""
    pending = session.info.get(_STASH, {}).pop(purchase.idempotency_key, None)
    if pending is None:
        return
    keep_rest, seen_balance, used = pending["keep_rest"], pending["seen_balance"], pending["used"]
    now = utcnow()
    changed = session.execute(
        update(Certificate)
        .where(
            Certificate.id == pending["certificate_id"],
            Certificate.status.in_(LIVE),
            Certificate.holder_id == pending["holder_id"],
            Certificate.issuer_id == merchant.id,
            Certificate.balance == seen_balance,
            Certificate.expires_at > now,
        )
        .values(
            status="issued" if keep_rest else "redeemed",
            balance=seen_balance - used if keep_rest else 0,
            redeemed_at=now,
            redeemed_purchase_id=None if keep_rest else purchase.id,
            gift_token_hash=None,  # a pending gift link dies with the value it promised
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        status = session.scalar(select(Certificate.status).where(Certificate.id == pending["certificate_id"]))
        if status == "redeemed":
            raise CertificateRefused(_("This certificate has already been used."))
        raise CertificateRefused(_("This certificate is no longer available to this customer."))
    event = {
        "certificate_id": pending["certificate_id"], "partnership_id": pending["partnership_id"],
        "issuer_id": merchant.id, "distributor_id": pending["distributor_id"], "kind": "redeemed",
        "count": 1, "face_value": 0, "value_used": used, "fee": pending["fee"],
        "purchase_amount": purchase.amount, "new_customer": pending["new_customer"],
        "purchase_id": purchase.id, "created_at": purchase.created_at,
    }
    if events is None:
        write_events(session, [event])
    else:
        events.append(event)


def write_events(session: Session, events: list[dict]) -> None:
    """Certificate events of one transaction in one INSERT."""
    if events:
        session.connection().execute(_sql().insert_event, events)


def forget_pending(session: Session) -> None:
    """Drop redemptions of a transaction that never reached its purchase row."""
    session.info.pop(_STASH, None)


# --------------------------------------------------------------------------- refunds


def undo_for_refund(session: Session, merchant: Merchant, purchase: Purchase) -> None:
    """Void live certificates the purchase issued; give back certificates it had used."""
    now = utcnow()
    voided = session.execute(
        update(Certificate)
        .where(Certificate.issued_purchase_id == purchase.id, Certificate.status.in_(LIVE))
        .values(status="voided", gift_token_hash=None)
        .returning(
            Certificate.id, Certificate.offer_id, Certificate.partnership_id, Certificate.issuer_id,
            Certificate.distributor_id, Certificate.face_value,
        )
        .execution_options(synchronize_session=False)
    ).all()
    receiver = session.scalar(select(Membership.user_id).where(Membership.id == purchase.membership_id))
    for row in sorted(voided, key=lambda r: r.offer_id):
        _release_offer(session, row.offer_id)
        session.execute(
            update(HolderCount)
            .where(HolderCount.offer_id == row.offer_id, HolderCount.user_id == receiver, HolderCount.issued > 0)
            .values(issued=HolderCount.issued - 1)
            .execution_options(synchronize_session=False)
        )
        session.add(CertificateEvent(
            certificate_id=row.id, partnership_id=row.partnership_id, issuer_id=row.issuer_id,
            distributor_id=row.distributor_id, kind="voided", count=1, face_value=row.face_value,
            purchase_id=purchase.id, created_at=now,
        ))
    redeemed = session.scalars(
        select(CertificateEvent).where(
            CertificateEvent.purchase_id == purchase.id,
            CertificateEvent.issuer_id == merchant.id,
            CertificateEvent.kind == "redeemed",
        )
    ).all()
    for event in redeemed:
        session.execute(
            update(Certificate)
            .where(Certificate.id == event.certificate_id)
            .values(
                status=case((Certificate.expires_at > now, "issued"), else_="expired"),
                balance=Certificate.balance + event.value_used,
                redeemed_purchase_id=None,
                redeemed_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        session.add(CertificateEvent(
            certificate_id=event.certificate_id, partnership_id=event.partnership_id,
            issuer_id=event.issuer_id, distributor_id=event.distributor_id, kind="restored",
            count=-1, value_used=-event.value_used, fee=-event.fee,
            purchase_amount=-event.purchase_amount, new_customer=event.new_customer,
            purchase_id=purchase.id, created_at=now,
        ))


# --------------------------------------------------------------------------- the holder's side


def holder_certificates(session: Session, user_id: int, live_only: bool = False) -> list[Certificate]:
    query = (
        select(Certificate)
        .options(joinedload(Certificate.issuer), joinedload(Certificate.distributor), joinedload(Certificate.offer))
        .where(Certificate.holder_id == user_id)
        .order_by(
            case((Certificate.status.in_(LIVE), 0), else_=1), Certificate.expires_at, Certificate.id
        )
    )
    if live_only:
        query = query.where(Certificate.status.in_(LIVE), Certificate.expires_at > utcnow())
    return list(session.scalars(query.limit(200)))


def certificates_for_card(session: Session, user_id: int, merchant: Merchant) -> list[Certificate]:
    """Live certificates to show on one wallet card: spendable here, or received here for a
    neighbour where the holder has no card (so each appears once)."""
    issuer_member = (
        select(Membership.id)
        .where(
            Membership.user_id == user_id,
            Membership.merchant_id == Certificate.issuer_id,
            Membership.left_at.is_(None),
        )
        .exists()
    )
    return list(
        session.scalars(
            select(Certificate)
            .options(joinedload(Certificate.issuer), joinedload(Certificate.offer))
            .where(
                Certificate.holder_id == user_id,
                Certificate.status.in_(LIVE),
                Certificate.expires_at > utcnow(),
                or_(
                    Certificate.issuer_id == merchant.id,
                    and_(Certificate.distributor_id == merchant.id, ~issuer_member),
                ),
            )
            .order_by(Certificate.expires_at)
        )
    )


def certificates_received(
    session: Session, distributor: Merchant, user_id: int, purchase_id: int | None
) -> list[Certificate]:
    """Live certificates the customer received at ``distributor`` (with one purchase, or any)."""
    query = (
        select(Certificate)
        .options(joinedload(Certificate.issuer))
        .where(
            Certificate.distributor_id == distributor.id,
            Certificate.holder_id == user_id,
            Certificate.status.in_(LIVE),
        )
        .order_by(Certificate.id)
    )
    if purchase_id is not None:
        query = query.where(Certificate.issued_purchase_id == purchase_id)
    return list(session.scalars(query.limit(10)))


def certificates_at_till(session: Session, merchant: Merchant, user_id: int) -> list[Certificate]:
    return list(
        session.scalars(
            select(Certificate)
            .options(joinedload(Certificate.distributor))
            .where(
                Certificate.holder_id == user_id,
                Certificate.issuer_id == merchant.id,
                Certificate.status.in_(LIVE),
                Certificate.expires_at > utcnow(),
            )
            .order_by(case((Certificate.status == "attached", 0), else_=1), Certificate.expires_at)
        )
    )


def holder_certificate(session: Session, user_id: int, certificate_id: int) -> Certificate:
    certificate = session.scalar(
        select(Certificate)
        .options(joinedload(Certificate.issuer), joinedload(Certificate.distributor), joinedload(Certificate.offer))
        .where(Certificate.id == certificate_id, Certificate.holder_id == user_id)
    )
    if certificate is None:
        raise NotFound(_("No such certificate."))
    return certificate


def certificate_by_code(session: Session, user_id: int, text: str, on_failed_lookup=None) -> Certificate:
    """The holder's certificate for a code (link or QR); everyone else gets the same 404."""
    try:
        code = extract_code(text)
    except codes.InvalidCode:
        raise NotFound(_("No such certificate.")) from None
    if on_failed_lookup:
        on_failed_lookup(failed=False)
    certificate = session.scalar(
        select(Certificate)
        .options(joinedload(Certificate.issuer), joinedload(Certificate.distributor), joinedload(Certificate.offer))
        .where(Certificate.code_hash == code_hash(code))
    )
    if certificate is None or certificate.holder_id != user_id:
        if on_failed_lookup:
            on_failed_lookup(failed=True)
        raise NotFound(_("No such certificate."))
    return certificate


def attach(session: Session, user_id: int, certificate_id: int) -> Certificate:
    """"Use at <merchant>": the cashier sees it when the holder is identified."""
    certificate = holder_certificate(session, user_id, certificate_id)
    changed = session.execute(
        update(Certificate)
        .where(
            Certificate.id == certificate.id, Certificate.holder_id == user_id,
            Certificate.status == "issued", Certificate.expires_at > utcnow(),
        )
        .values(status="attached")
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        session.rollback()
        raise Conflict(_("This certificate cannot be attached any more."))
    session.commit()
    session.refresh(certificate)
    return certificate


def detach(session: Session, user_id: int, certificate_id: int) -> Certificate:
    certificate = holder_certificate(session, user_id, certificate_id)
    changed = session.execute(
        update(Certificate)
        .where(Certificate.id == certificate.id, Certificate.holder_id == user_id, Certificate.status == "attached")
        .values(status="issued")
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        session.rollback()
        raise Conflict(_("This certificate is not attached."))
    session.commit()
    session.refresh(certificate)
    return certificate


def _token_hash(token: str) -> str:
    return codes.token_hash(token)


def create_gift_link(session: Session, user_id: int, certificate_id: int) -> str:
    """A one-time link; whoever signs in and claims it becomes the single holder."""
    certificate = holder_certificate(session, user_id, certificate_id)
    token = secrets.token_urlsafe(24)
    changed = session.execute(
        update(Certificate)
        .where(
            Certificate.id == certificate.id, Certificate.holder_id == user_id,
            Certificate.status.in_(LIVE), Certificate.expires_at > utcnow(),
        )
        .values(gift_token_hash=_token_hash(token), status="issued")
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        session.rollback()
        raise Conflict(_("Only a certificate that can still be used can be gifted."))
    session.commit()
    return token


def cancel_gift(session: Session, user_id: int, certificate_id: int) -> None:
    holder_certificate(session, user_id, certificate_id)
    session.execute(
        update(Certificate)
        .where(Certificate.id == certificate_id, Certificate.holder_id == user_id)
        .values(gift_token_hash=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def gift_preview(session: Session, token: str) -> Certificate:
    certificate = session.scalar(
        select(Certificate)
        .options(joinedload(Certificate.issuer), joinedload(Certificate.offer))
        .where(Certificate.gift_token_hash == _token_hash(token or ""))
    )
    if certificate is None or certificate.status not in LIVE:
        raise NotFound(_("This gift link has already been used or cancelled."))
    return certificate


def claim_gift(session: Session, user_id: int, token: str) -> Certificate:
    """Move the certificate to the claimant with one guarded UPDATE and give it a new code.

    The giver has seen the old code; a new one means only the new holder can show it.
    """
    certificate = gift_preview(session, token)
    if certificate.holder_id == user_id:
        raise Conflict(_("This certificate is already yours; send the link to a friend."))
    _code, stored = new_code()
    changed = session.execute(
        update(Certificate)
        .where(
            Certificate.id == certificate.id,
            Certificate.gift_token_hash == _token_hash(token),
            Certificate.status.in_(LIVE),
            Certificate.expires_at > utcnow(),
        )
        .values(holder_id=user_id, status="issued", gift_token_hash=None, **stored)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        session.rollback()
        raise Conflict(_("This gift link has already been used or cancelled."))
    session.add(CertificateEvent(
        certificate_id=certificate.id, partnership_id=certificate.partnership_id,
        issuer_id=certificate.issuer_id, distributor_id=certificate.distributor_id,
        kind="transferred", count=1, face_value=certificate.face_value,
        purchase_id=None, created_at=utcnow(),
    ))
    session.commit()
    session.refresh(certificate)
    return certificate


# --------------------------------------------------------------------------- expiry and reminders


def expire_certificates(session: Session, now: datetime | None = None) -> int:
    """Mark live certificates past their date as expired, with one event each."""
    now = now or utcnow()
    rows = session.execute(
        update(Certificate)
        .where(Certificate.status.in_(LIVE), Certificate.expires_at <= now)
        .values(status="expired", gift_token_hash=None)
        .returning(
            Certificate.id, Certificate.partnership_id, Certificate.issuer_id,
            Certificate.distributor_id, Certificate.balance,
        )
        .execution_options(synchronize_session=False)
    ).all()
    for row in rows:
        session.add(CertificateEvent(
            certificate_id=row.id, partnership_id=row.partnership_id, issuer_id=row.issuer_id,
            distributor_id=row.distributor_id, kind="expired", count=1, face_value=row.balance,
            created_at=now,
        ))
    session.commit()
    return len(rows)


@dataclass(frozen=True)
class Reminder:
    email: str
    locale: str
    name: str
    issuer_name: str
    value: str
    expires_at: datetime
    days: int
    certificate_id: int


def due_reminders(session: Session, now: datetime | None = None) -> list[Reminder]:
    """Claim the reminders due now (7 days and 1 day before expiry) and commit the claims.

    Each claim is a guarded UPDATE, so two workers never remind the same person twice.
    """
    now = now or utcnow()
    windows = (
        (7, Certificate.reminded_week_at, "reminded_week_at", now + timedelta(days=1), now + timedelta(days=7)),
        (1, Certificate.reminded_day_at, "reminded_day_at", now, now + timedelta(days=1)),
    )
    reminders: list[Reminder] = []
    for days, column, name, after, until in windows:
        candidates = session.execute(
            select(Certificate, User)
            .join(User, User.id == Certificate.holder_id)
            .options(joinedload(Certificate.issuer).joinedload(Merchant.network))
            .where(
                Certificate.status.in_(LIVE),
                Certificate.expires_at > after,
                Certificate.expires_at <= until,
                column.is_(None),
            )
            .limit(500)
        ).all()
        for certificate, user in candidates:
            claimed = session.execute(
                update(Certificate)
                .where(Certificate.id == certificate.id, column.is_(None))
                .values({name: now})
                .execution_options(synchronize_session=False)
            ).rowcount
            if not claimed or not user.email:
                continue
            reminders.append(Reminder(
                email=user.email, locale=user.locale or "en", name=user.first_name,
                issuer_name=certificate.issuer.name,
                value=money(certificate.balance, certificate.issuer.network.currency),
                expires_at=certificate.expires_at, days=days, certificate_id=certificate.id,
            ))
    session.commit()
    return reminders


# --------------------------------------------------------------------------- economics


def _month_expression(session: Session, column):
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


@dataclass
class MonthFigures:
    """One partnership's figures for one month, summed from the certificate events."""

    month: str
    issued: int = 0
    redeemed: int = 0
    expired: int = 0
    voided: int = 0
    revenue: int = 0
    new_customers: int = 0
    value_used: int = 0
    fees: int = 0

    @property
    def cost(self) -> int:
        return self.value_used + self.fees

    @property
    def redemption_rate_pct(self) -> int | None:
        return round(100 * self.redeemed / self.issued) if self.issued else None


@dataclass
class PartnershipEconomics:
    partnership: Partnership
    role: str  # "issuer" or "distributor": what this merchant is in it
    months: list[MonthFigures] = field(default_factory=list)

    @property
    def counterpart(self) -> Merchant:
        return self.partnership.distributor if self.role == "issuer" else self.partnership.offer.issuer

    def total(self) -> MonthFigures:
        total = MonthFigures(month="")
        for month in self.months:
            for name in ("issued", "redeemed", "expired", "voided", "revenue", "new_customers", "value_used", "fees"):
                setattr(total, name, getattr(total, name) + getattr(month, name))
        return total


def month_keys(end: date, count: int) -> list[str]:
    keys = []
    year, month = end.year, end.month
    for _index in range(count):
        keys.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(keys))


def _sums(session: Session, where, group_extra=()):
    month = _month_expression(session, CertificateEvent.created_at)
    return session.execute(
        select(
            CertificateEvent.partnership_id,
            month.label("month"),
            CertificateEvent.kind,
            func.coalesce(func.sum(CertificateEvent.count), 0),
            func.coalesce(func.sum(CertificateEvent.purchase_amount), 0),
            func.coalesce(func.sum(case((CertificateEvent.new_customer.is_(True), CertificateEvent.count), else_=0)), 0),
            func.coalesce(func.sum(CertificateEvent.value_used), 0),
            func.coalesce(func.sum(CertificateEvent.fee), 0),
            *group_extra,
        )
        .where(where)
        .group_by(CertificateEvent.partnership_id, month, CertificateEvent.kind, *group_extra)
    ).all()


def _apply(figures: MonthFigures, kind: str, count: int, revenue: int, new: int, used: int, fees: int) -> None:
    if kind == "issued":
        figures.issued += count
    elif kind in ("redeemed", "restored"):
        figures.redeemed += count
        figures.revenue += revenue
        figures.new_customers += new
        figures.value_used += used
        figures.fees += fees
    elif kind == "expired":
        figures.expired += count
    elif kind == "voided":
        figures.voided += count


def economics(session: Session, merchant: Merchant, months: int = 6, end: date | None = None) -> list[PartnershipEconomics]:
    """Per partnership the merchant is a side of: figures for each of the last ``months`` months."""
    end = end or utcnow().date()
    keys = month_keys(end, months)
    partnerships = [p for p in merchant_partnerships(session, merchant) if p.status != "declined"]
    result = {
        p.id: PartnershipEconomics(
            p, "issuer" if p.offer.issuer_id == merchant.id else "distributor",
            [MonthFigures(key) for key in keys],
        )
        for p in partnerships
    }
    if not result:
        return []
    first = datetime.fromisoformat(keys[0] + "-01").replace(tzinfo=UTC)
    rows = _sums(
        session,
        and_(
            or_(CertificateEvent.issuer_id == merchant.id, CertificateEvent.distributor_id == merchant.id),
            CertificateEvent.created_at >= first,
        ),
    )
    index = {key: position for position, key in enumerate(keys)}
    for partnership_id, month, kind, count, revenue, new, used, fees in rows:
        if partnership_id in result and month in index:
            _apply(result[partnership_id].months[index[month]], kind, count, revenue, new, used, fees)
    return list(result.values())


@dataclass(frozen=True)
class SettlementLine:
    partnership_id: int
    counterpart: str
    role: str  # this merchant's role
    redeemed: int
    value_used: int
    fees: int
    amount: int  # signed, from this merchant's point of view: + receives, - pays


@dataclass(frozen=True)
class Settlement:
    merchant_name: str
    month: str
    currency: str
    lines: list[SettlementLine]

    @property
    def receivable(self) -> int:
        return sum(line.amount for line in self.lines if line.amount > 0)

    @property
    def payable(self) -> int:
        return -sum(line.amount for line in self.lines if line.amount < 0)

    @property
    def net(self) -> int:
        return sum(line.amount for line in self.lines)


def parse_month(text: str | None, default: date | None = None) -> tuple[int, int]:
    default = default or utcnow().date()
    try:
        year_text, month_text = (text or "").split("-")
        year, month = int(year_text), int(month_text)
        if not (2000 <= year <= 2100 and 1 <= month <= 12):
            raise ValueError
    except ValueError:
        return default.year, default.month
    return year, month


def settlement(session: Session, merchant: Merchant, year: int, month: int) -> Settlement:
    """Who owes whom for the month: fees for redeemed certificates (net of refunds)."""
    start = datetime(year, month, 1, tzinfo=UTC)
    stop = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    rows = session.execute(
        select(
            CertificateEvent.partnership_id,
            CertificateEvent.issuer_id,
            CertificateEvent.distributor_id,
            func.coalesce(func.sum(CertificateEvent.count), 0),
            func.coalesce(func.sum(CertificateEvent.value_used), 0),
            func.coalesce(func.sum(CertificateEvent.fee), 0),
        )
        .where(
            or_(CertificateEvent.issuer_id == merchant.id, CertificateEvent.distributor_id == merchant.id),
            CertificateEvent.kind.in_(("redeemed", "restored")),
            CertificateEvent.created_at >= start,
            CertificateEvent.created_at < stop,
        )
        .group_by(CertificateEvent.partnership_id, CertificateEvent.issuer_id, CertificateEvent.distributor_id)
        .order_by(CertificateEvent.partnership_id)
    ).all()
    names = dict(
        session.execute(
            select(Merchant.id, Merchant.name).where(
                Merchant.id.in_({r[1] for r in rows} | {r[2] for r in rows} or {0})
            )
        ).all()
    )
    lines = []
    for partnership_id, issuer_id, distributor_id, count, used, fees in rows:
        is_issuer = issuer_id == merchant.id
        lines.append(SettlementLine(
            partnership_id=partnership_id,
            counterpart=names.get(distributor_id if is_issuer else issuer_id, ""),
            role="issuer" if is_issuer else "distributor",
            redeemed=count, value_used=used, fees=fees,
            amount=-fees if is_issuer else fees,
        ))
    return Settlement(merchant.name, f"{year:04d}-{month:02d}", merchant.network.currency, lines)


@dataclass(frozen=True)
class Flow:
    distributor: str
    issuer: str
    issued: int
    redeemed: int
    new_customers: int


def network_flows(session: Session, network_id: int) -> list[Flow]:
    """Who sent customers to whom in a network: certificates issued and redeemed per pair."""
    rows = session.execute(
        select(
            CertificateEvent.distributor_id,
            CertificateEvent.issuer_id,
            func.coalesce(func.sum(case((CertificateEvent.kind == "issued", CertificateEvent.count), else_=0)), 0),
            func.coalesce(func.sum(case((CertificateEvent.kind.in_(("redeemed", "restored")), CertificateEvent.count), else_=0)), 0),
            func.coalesce(func.sum(case(
                (and_(CertificateEvent.kind.in_(("redeemed", "restored")), CertificateEvent.new_customer.is_(True)), CertificateEvent.count),
                else_=0,
            )), 0),
        )
        .join(Merchant, Merchant.id == CertificateEvent.issuer_id)
        .where(Merchant.network_id == network_id)
        .group_by(CertificateEvent.distributor_id, CertificateEvent.issuer_id)
    ).all()
    names = dict(session.execute(select(Merchant.id, Merchant.name).where(Merchant.network_id == network_id)).all())
    flows = [Flow(names.get(d, ""), names.get(i, ""), issued, redeemed, new) for d, i, issued, redeemed, new in rows]
    return sorted(flows, key=lambda flow: (-flow.redeemed, -flow.issued, flow.distributor, flow.issuer))


# --------------------------------------------------------------------------- privacy


def customer_export(session: Session, user_id: int) -> list[dict]:
    return [
        {
            "issuer": c.issuer.name,
            "received_at": c.distributor.name,
            "received_for": c.issued_reason,
            "face_value": c.face_value,
            "balance": c.balance,
            "status": c.status,
            "issued_at": c.issued_at.isoformat(),
            "expires_at": c.expires_at.isoformat(),
            "code_last4": c.code_last4,
        }
        for c in holder_certificates(session, user_id)
    ]


def forget_holder(session: Session, user_id: int) -> None:
    """Erasure: live certificates are voided (nobody can hold them), gift links die.

    Rows stay for the merchants' settlement, under the pseudonymous user id.
    """
    session.execute(
        update(Certificate)
        .where(Certificate.holder_id == user_id)
        .values(gift_token_hash=None)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        update(Certificate)
        .where(Certificate.holder_id == user_id, Certificate.status.in_(LIVE))
        .values(status="voided")
        .returning(Certificate.id, Certificate.partnership_id, Certificate.issuer_id, Certificate.distributor_id, Certificate.balance)
        .execution_options(synchronize_session=False)
    ).all()
    now = utcnow()
    for row in rows:
        session.add(CertificateEvent(
            certificate_id=row.id, partnership_id=row.partnership_id, issuer_id=row.issuer_id,
            distributor_id=row.distributor_id, kind="voided", count=1, face_value=row.balance,
            created_at=now,
        ))
