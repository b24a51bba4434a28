"""Joining merchants, consents (append-only), and finding customers at the till."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp import tasks
from webapp.errors import NotFound, ValidationFailed
from webapp.models import ConsentRecord, Membership, Merchant, User
from webapp.models.base import utcnow
from webapp.plugins import hooks_for
from webapp.services import codes
from webapp.services.ledger import bump_weekly_stats

DATA_PROCESSING = "data_processing"
MARKETING = "marketing"


def consent_text(merchant: Merchant, purpose: str = DATA_PROCESSING) -> str:
    """The words a customer agrees to; stored with each consent record."""
    if purpose == MARKETING:
        return (
            f"{merchant.name} may send me thank-you letters, news and offers by e-mail. "
            "I can unsubscribe at any time."
        )
    return (
        f"I agree that {merchant.name} and the {merchant.network.name} network process my name, "
        "contact details and purchases to run my loyalty card (points, rewards, history). "
        "I can withdraw this consent at any time on my account page."
    )


def record_consent(
    session: Session,
    user: User,
    merchant: Merchant | None,
    purpose: str,
    granted: bool,
    text_version: str,
    text: str,
) -> ConsentRecord:
    record = ConsentRecord(
        user_id=user.id,
        merchant_id=merchant.id if merchant else None,
        purpose=purpose,
        granted=granted,
        text_version=text_version,
        text=text,
    )
    session.add(record)
    return record


def current_consents(session: Session, user_id: int) -> dict[tuple[int | None, str], ConsentRecord]:
    """The latest record per (merchant, purpose): what the customer agreed to now."""
    latest: dict[tuple[int | None, str], ConsentRecord] = {}
    for record in session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.user_id == user_id)
        .order_by(ConsentRecord.created_at, ConsentRecord.id)
    ):
        latest[(record.merchant_id, record.purpose)] = record
    return latest


def has_consent(session: Session, user_id: int, merchant_id: int, purpose: str) -> bool:
    record = session.scalar(
        select(ConsentRecord)
        .where(
            ConsentRecord.user_id == user_id,
            ConsentRecord.merchant_id == merchant_id,
            ConsentRecord.purpose == purpose,
        )
        .order_by(ConsentRecord.created_at.desc(), ConsentRecord.id.desc())
        .limit(1)
    )
    return bool(record and record.granted)


def find_membership(session: Session, user_id: int, merchant_id: int) -> Membership | None:
    return session.scalar(
        select(Membership).where(Membership.user_id == user_id, Membership.merchant_id == merchant_id)
    )


def join_merchant(
    session: Session,
    user: User,
    merchant: Merchant,
    *,
    consent_given: bool,
    text_version: str,
    source: str = "link",
    marketing_consent: bool = False,
    referral_code: str | None = None,
) -> tuple[Membership, bool]:
    """Make ``user`` a member of ``merchant``; returns (membership, newly_joined).

    Consent must be given explicitly each time someone joins (or re-joins after withdrawing).
    """
    if merchant.status != "active":
        raise NotFound("This business is not taking new members right now.")
    if not consent_given:
        raise ValidationFailed(
            "To get a loyalty card you need to agree to the processing of your data."
        )
    existing = find_membership(session, user.id, merchant.id)
    if existing is not None and existing.left_at is None:
        return existing, False
    record_consent(
        session, user, merchant, DATA_PROCESSING, True, text_version, consent_text(merchant)
    )
    if marketing_consent:
        record_consent(
            session, user, merchant, MARKETING, True, text_version,
            consent_text(merchant, MARKETING),
        )
    if existing is not None:
        existing.left_at = None
        session.commit()
        return existing, False
    membership = Membership(user_id=user.id, merchant_id=merchant.id, join_source=source)
    session.add(membership)
    try:
        session.flush()
        bump_weekly_stats(session, merchant.id, utcnow(), new_customers=1)
        hooks_for(merchant).neighbourly_membership_recorded(
            merchant=merchant, membership=membership, session=session, referral_code=referral_code
        )
        session.commit()
    except IntegrityError:
        # Two joins raced (double click): the other one won; return that membership.
        session.rollback()
        existing = find_membership(session, user.id, merchant.id)
        if existing is None:
            raise
        return existing, False
    except Exception:
        session.rollback()
        raise
    tasks.dispatch_committed(merchant, "membership", membership.id)
    return membership, True


def withdraw_consent(
    session: Session, user: User, merchant: Merchant, purpose: str, text_version: str
) -> None:
    """Withdraw as easily as given; withdrawing data processing closes the card (points kept)."""
    record_consent(session, user, merchant, purpose, False, text_version, consent_text(merchant, purpose))
    if purpose == DATA_PROCESSING:
        session.execute(
            update(Membership)
            .where(Membership.user_id == user.id, Membership.merchant_id == merchant.id)
            .values(left_at=utcnow())
        )
    session.commit()


def grant_consent(
    session: Session, user: User, merchant: Merchant, purpose: str, text_version: str
) -> None:
    record_consent(session, user, merchant, purpose, True, text_version, consent_text(merchant, purpose))
    session.commit()


def find_customer_at_till(session: Session, merchant: Merchant, query: str) -> Membership | None:
    """Find a member of ``merchant`` by card code (typed or scanned QR) or phone number."""
    text = (query or "").strip()
    if not text:
        return None
    if text.lower().startswith("neighbourly:card:"):
        text = text.split(":", 2)[2]
    user_id = None
    try:
        card = codes.normalize(text, 10)
    except codes.InvalidCode:
        card = None
    if card:
        user_id = session.scalar(select(User.id).where(User.card_code == card))
    if user_id is None:
        digits = "".join(ch for ch in text if ch.isdigit())
        if 7 <= len(digits) <= 15:
            user_id = session.scalar(select(User.id).where(User.phone == "+" + digits))
    if user_id is None:
        return None
    membership = find_membership(session, user_id, merchant.id)
    if membership is None or membership.left_at is not None:
        return None
    return membership
