"""The holder's side of certificates (the wallet, attaching, gifts), expiry and reminders, and privacy."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, case, or_, select, update
from sqlalchemy.orm import Session, joinedload

from plugins.cross_marketing.models import Certificate, CertificateEvent
from plugins.cross_marketing.services.base import LIVE, code_hash, extract_code, new_code
from webapp.plugin_api import (
    Conflict,
    Membership,
    Merchant,
    NotFound,
    Purchase,
    User,
    codes,
    money,
    recipient_locale,
    unit_of_work,
    utcnow,
)

# --------------------------------------------------------------------------- the holder's side


def gifts_cancelled(session: Session, purchase: Purchase, certificate_ids: list[int]) -> list[Certificate]:
    """Of the certificates a refund voided, those held by someone other than the buyer (a gift),
    whose holder agreed to hear from the business that handed it out or accepts it."""
    from webapp.plugin_api import MARKETING, has_consent

    if not certificate_ids:
        return []
    buyer = session.scalar(select(Membership.user_id).where(Membership.id == purchase.membership_id))
    gifts = session.scalars(
        select(Certificate).options(joinedload(Certificate.holder), joinedload(Certificate.distributor))
        .where(Certificate.id.in_(certificate_ids), Certificate.holder_id != buyer)
    ).all()
    return [c for c in gifts if has_consent(session, c.holder_id, c.distributor_id, MARKETING)
            or has_consent(session, c.holder_id, c.issuer_id, MARKETING)]


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
    return list(
        session.scalars(
            _card_certificates_statement(), {"user_id": user_id, "merchant_id": merchant.id, "now": utcnow()}
        )
    )


@lru_cache(maxsize=1)
def _card_certificates_statement():
    """``certificates_for_card``'s statement, built once (every wallet card asks on every visit)."""
    user_id, merchant_id = bindparam("user_id"), bindparam("merchant_id")
    issuer_member = (
        select(Membership.id)
        .where(
            Membership.user_id == user_id,
            Membership.merchant_id == Certificate.issuer_id,
            Membership.left_at.is_(None),
        )
        .exists()
    )
    return (
        select(Certificate)
        .options(joinedload(Certificate.issuer), joinedload(Certificate.offer))
        .where(
            Certificate.holder_id == user_id,
            Certificate.status.in_(LIVE),
            Certificate.expires_at > bindparam("now"),
            or_(
                Certificate.issuer_id == merchant_id,
                and_(Certificate.distributor_id == merchant_id, ~issuer_member),
            ),
        )
        .order_by(Certificate.expires_at)
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


@dataclass(frozen=True)
class TillLink:
    """Where a certificate's QR code takes the staff of the business that accepts it."""

    merchant_slug: str
    membership_id: int | None  # the holder's card there, when they have one
    code: str


def till_link_for_staff(session: Session, user_id: int, text: str) -> TillLink | None:
    """The till of the accepting business for a certificate code scanned by its staff; ``None``
    for anyone else (the holder gets their own page, everyone else the same 404)."""
    from webapp.plugin_api import StaffRole

    try:
        code = extract_code(text)
    except codes.InvalidCode:
        return None
    row = session.execute(
        select(Merchant.slug, Certificate.holder_id, Certificate.issuer_id)
        .join(Merchant, Merchant.id == Certificate.issuer_id)
        .join(StaffRole, and_(StaffRole.merchant_id == Certificate.issuer_id, StaffRole.user_id == user_id))
        .where(Certificate.code_hash == code_hash(code), Certificate.holder_id != user_id)
    ).first()
    if row is None:
        return None
    slug, holder_id, issuer_id = row
    membership_id = session.scalar(select(Membership.id).where(
        Membership.user_id == holder_id, Membership.merchant_id == issuer_id, Membership.left_at.is_(None)))
    return TillLink(slug, membership_id, codes.group(code))


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
    with unit_of_work(session):
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
            raise Conflict(_("This certificate cannot be attached any more."))
    session.refresh(certificate)
    return certificate


def detach(session: Session, user_id: int, certificate_id: int) -> Certificate:
    certificate = holder_certificate(session, user_id, certificate_id)
    with unit_of_work(session):
        changed = session.execute(
            update(Certificate)
            .where(Certificate.id == certificate.id, Certificate.holder_id == user_id, Certificate.status == "attached")
            .values(status="issued")
            .execution_options(synchronize_session=False)
        ).rowcount
        if not changed:
            raise Conflict(_("This certificate is not attached."))
    session.refresh(certificate)
    return certificate


def _token_hash(token: str) -> str:
    return codes.token_hash(token)


def create_gift_link(session: Session, user_id: int, certificate_id: int) -> str:
    """A one-time link; whoever signs in and claims it becomes the single holder."""
    certificate = holder_certificate(session, user_id, certificate_id)
    token = secrets.token_urlsafe(24)
    with unit_of_work(session):
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
            raise Conflict(_("Only a certificate that can still be used can be gifted."))
    return token


def cancel_gift(session: Session, user_id: int, certificate_id: int) -> None:
    holder_certificate(session, user_id, certificate_id)
    with unit_of_work(session):
        session.execute(
            update(Certificate)
            .where(Certificate.id == certificate_id, Certificate.holder_id == user_id)
            .values(gift_token_hash=None)
            .execution_options(synchronize_session=False)
        )


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
    with unit_of_work(session):
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
            raise Conflict(_("This gift link has already been used or cancelled."))
        session.add(CertificateEvent(
            certificate_id=certificate.id, partnership_id=certificate.partnership_id,
            issuer_id=certificate.issuer_id, distributor_id=certificate.distributor_id,
            kind="transferred", count=1, face_value=certificate.face_value,
            purchase_id=None, created_at=utcnow(),
        ))
    session.refresh(certificate)
    return certificate


# --------------------------------------------------------------------------- expiry and reminders


def expire_certificates(session: Session, now: datetime | None = None) -> int:
    """Mark live certificates past their date as expired, with one event each."""
    now = now or utcnow()
    with unit_of_work(session):
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
    """Claim the reminders due now (7 days and 1 day before expiry) and commit the claims (with the
    caller's transaction when called inside one, as the hourly job does).

    Each claim is a guarded UPDATE, so two workers never remind the same person twice.
    """
    now = now or utcnow()
    windows = (
        (7, Certificate.reminded_week_at, "reminded_week_at", now + timedelta(days=1), now + timedelta(days=7)),
        (1, Certificate.reminded_day_at, "reminded_day_at", now, now + timedelta(days=1)),
    )
    reminders: list[Reminder] = []
    with unit_of_work(session):
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
                locale = recipient_locale(user, certificate.issuer.network)
                reminders.append(Reminder(
                    email=user.email, locale=locale, name=user.first_name,
                    issuer_name=certificate.issuer.name,
                    value=money(certificate.balance, certificate.issuer.network.currency, locale),
                    expires_at=certificate.expires_at, days=days, certificate_id=certificate.id,
                ))
    return reminders


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
