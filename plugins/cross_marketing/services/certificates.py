"""Certificates in the money path: issuing at a purchase or as a reward, redeeming at the till, undoing at a refund."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import bindparam, case, or_, select, update
from sqlalchemy.orm import Session, joinedload

from plugins.cross_marketing.models import (
    MAX_REASON,
    Certificate,
    CertificateEvent,
    HolderCount,
    Offer,
    Partnership,
)
from plugins.cross_marketing.services.base import (
    LIVE,
    PLUGIN_NAME,
    CertificateRefused,
    code_hash,
    extract_code,
    new_code,
)
from webapp.plugin_api import (
    GrantedReward,
    Membership,
    Merchant,
    Purchase,
    PurchaseAdjustment,
    RewardOption,
    RewardUnavailable,
    codes,
    db,
    merchant_ids_with_plugin,
    money,
    outbox,
    record_event,
    upsert_insert,
    utcnow,
)

# --------------------------------------------------------------------------- issuing



class _Statements:
    """The issuing path's statements, built once on the tables and run on the session's
    connection: a checkout pays for executing them, not for composing them again."""

    def __init__(self) -> None:
        p, o, m = Partnership.__table__, Offer.__table__, Merchant.__table__
        c, e = Certificate.__table__, CertificateEvent.__table__
        issuer_enabled = o.c.issuer_id.in_(merchant_ids_with_plugin(PLUGIN_NAME))
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
        distributor_id = bindparam("distributor_id")
        chosen = o.alias("chosen_offer")
        issuer_enabled = chosen.c.issuer_id.in_(merchant_ids_with_plugin(PLUGIN_NAME))
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
) -> PurchaseAdjustment:
    """What the certificate pays of the bill (inside the purchase; the till's quote too).

    Nothing is written here: ``record_redemption`` consumes the certificate exactly once, with
    one guarded UPDATE that also links it to the purchase row, in the same transaction. What it
    needs travels in the adjustment's ``data``, which the core hands back with the purchase.
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
    data = {
        "certificate_id": certificate.id,
        "partnership_id": certificate.partnership_id,
        "distributor_id": certificate.distributor_id,
        "holder_id": membership.user_id,
        "seen_balance": seen_balance,
        "fee": offer.fee,
        "new_customer": membership.visits == 0,
        "rest_kept": offer.remainder_policy == "kept",
    }
    label = _("Certificate from %(name)s", name=certificate.distributor.name)
    return PurchaseAdjustment(source=PLUGIN_NAME, label=label, amount=used, kind="certificate", data=data)


def record_redemption(
    session: Session, merchant: Merchant, purchase: Purchase,
    adjustments: Sequence[PurchaseAdjustment] = (), events: list[dict] | None = None,
) -> None:
    """After the purchase row exists: consume the certificate the sale's adjustment names (from
    ``redeem_in_purchase``) with one guarded UPDATE (exactly once: it must still be live, the
    holder's, this merchant's, unexpired and at the balance the bill was computed from; its
    purchase is set in the same statement), and write the ledger event (or add it to
    ``events``). A refusal rolls the whole purchase back."""
    mine = [a for a in adjustments if a.source == PLUGIN_NAME and a.kind == "certificate" and a.data]
    if not mine:
        return
    pending, used = mine[0].data, mine[0].amount  # the amount as applied, after the core's cap
    seen_balance = pending["seen_balance"]
    keep_rest = pending["rest_kept"] and used < seen_balance
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
    record_event(session, merchant, "certificate.redeemed", {
        "certificate_id": pending["certificate_id"],
        "purchase_id": purchase.id,
        "membership_id": purchase.membership_id,
        "value_used": used,
        "used_up": not keep_rest,
        "distributor_id": pending["distributor_id"],
        "redeemed_at": purchase.created_at.isoformat(),
    })


def write_events(session: Session, events: list[dict]) -> None:
    """Certificate events of one transaction in one INSERT."""
    if events:
        session.connection().execute(_sql().insert_event, events)


ISSUED_EVENTS = "cross_marketing.issued_events"


def queue_issued_events(session: Session, merchant_id: int, events: list[dict]) -> None:
    """The "issued" events of a sale, for the economics pages, go through the outbox: the worker
    writes them in the unit of work that completes the message (exactly once). The certificates,
    caps and the redemption's events stay in the sale; this saves the sale one INSERT (its
    outbox rows share one). Nothing reads an "issued" event inside a sale or a refund."""
    if events:
        payload = [{**event, "created_at": event["created_at"].isoformat()} for event in events]
        outbox.add(session, ISSUED_EVENTS, {"events": payload}, merchant_id=merchant_id)


@outbox.handler(ISSUED_EVENTS)
def _write_issued_events(payload: dict) -> None:
    write_events(db.session, [
        {**event, "created_at": datetime.fromisoformat(event["created_at"])} for event in payload["events"]
    ])


# --------------------------------------------------------------------------- refunds


def undo_for_refund(session: Session, merchant: Merchant, purchase: Purchase) -> list[int]:
    """Void live certificates the purchase issued; give back certificates it had used. Returns
    the ids of the certificates voided."""
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
    return [row.id for row in voided]
