"""Joining merchants, consents (append-only), and finding customers at the till."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager, joinedload

from webapp import outbox, tasks
from webapp.errors import NotFound, ValidationFailed
from webapp.models import ConsentRecord, LedgerEntry, Membership, Merchant, Network, User
from webapp.models.base import utcnow
from webapp.plugins import hooks_for
from webapp.services import codes, phones
from webapp.services.ledger import bump_weekly_stats
from webapp.timezones import network_zone
from webapp.unit_of_work import unit_of_work

DATA_PROCESSING = "data_processing"
MARKETING = "marketing"


def consent_text(merchant: Merchant, purpose: str = DATA_PROCESSING) -> str:
    """The words a customer agrees to; stored with each consent record."""
    if purpose == MARKETING:
        return _(
            "%(merchant)s may send me thank-you letters, news and offers by e-mail. "
            "I can unsubscribe at any time.",
            merchant=merchant.name,
        )
    return _(
        "I agree that %(merchant)s and the %(network)s network process my name, "
        "contact details and purchases to run my loyalty card (points, rewards, history). "
        "I can withdraw this consent at any time on my account page.",
        merchant=merchant.name, network=merchant.network.name,
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
        raise NotFound(_("This business is not taking new members right now."))
    if not consent_given:
        raise ValidationFailed(
            _("To get a loyalty card you need to agree to the processing of your data.")
        )
    existing = find_membership(session, user.id, merchant.id)
    if existing is not None and existing.left_at is None:
        return existing, False
    try:
        with unit_of_work(session):
            record_consent(
                session, user, merchant, DATA_PROCESSING, True, text_version, consent_text(merchant)
            )
            if marketing_consent:
                record_consent(
                    session, user, merchant, MARKETING, True, text_version,
                    consent_text(merchant, MARKETING),
                )
            # Re-joining opens the earlier card again (same balance and history): not a new customer.
            rejoined = existing is not None
            if rejoined:
                membership = existing
                membership.left_at = None
            else:
                membership = Membership(user_id=user.id, merchant_id=merchant.id, join_source=source)
                session.add(membership)
            session.flush()
            if not rejoined:
                bump_weekly_stats(session, merchant.id, utcnow(), zone=network_zone(merchant.network), new_customers=1)
                if merchant.welcome_bonus_points > 0:  # a person's first joining only (never a re-join)
                    from webapp.services.points import grant_welcome_bonus

                    grant_welcome_bonus(session, merchant, membership, user)
            hooks_for(merchant).neighbourly_membership_recorded(
                merchant=merchant, membership=membership, session=session, referral_code=referral_code,
                rejoined=rejoined,
            )
            if not rejoined:
                tasks.queue_committed(session, merchant, "membership", membership.id)
                outbox.record_event(session, merchant, "membership.created", {
                    "id": membership.id, "user_id": user.id, "source": source,
                    "joined_at": membership.joined_at.isoformat(),
                })
    except IntegrityError:
        # Two joins raced (double click): the other one won; return that membership.
        existing = find_membership(session, user.id, merchant.id)
        if existing is None:
            raise
        return existing, False
    return membership, not rejoined


def withdraw_consent(
    session: Session, user: User, merchant: Merchant, purpose: str, text_version: str
) -> None:
    """Withdraw as easily as given; withdrawing data processing closes the card (points kept).

    Marketing rests on data processing, so withdrawing the latter withdraws a granted marketing
    consent too: no letters may go to a card that was closed.
    """
    with unit_of_work(session):
        record_consent(session, user, merchant, purpose, False, text_version, consent_text(merchant, purpose))
        if purpose == DATA_PROCESSING:
            if has_consent(session, user.id, merchant.id, MARKETING):
                record_consent(
                    session, user, merchant, MARKETING, False, text_version,
                    consent_text(merchant, MARKETING),
                )
            session.execute(
                update(Membership)
                .where(Membership.user_id == user.id, Membership.merchant_id == merchant.id)
                .values(left_at=utcnow())
            )


def grant_consent(
    session: Session, user: User, merchant: Merchant, purpose: str, text_version: str
) -> None:
    with unit_of_work(session):
        record_consent(session, user, merchant, purpose, True, text_version, consent_text(merchant, purpose))


def find_customer_at_till(session: Session, merchant: Merchant, query: str) -> Membership | None:
    """Find a member of ``merchant`` by card code (typed or scanned QR) or phone number."""
    text = (query or "").strip()
    if not text or "\x00" in text:  # no card or phone has a NUL, and PostgreSQL refuses one
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
        # A card kept from a merchant's previous program (imported as it was printed).
        old_card = "".join(text.split()).upper()
        if 0 < len(old_card) <= 16:
            user_id = session.scalar(select(User.id).where(User.card_code == old_card))
    if user_id is None:
        phone = phones.parse_or_none(text, phones.merchant_region(merchant))
        if phone:
            user_id = session.scalar(select(User.id).where(User.phone == phone))
    if user_id is None:
        return None
    membership = find_membership(session, user_id, merchant.id)
    if membership is None or membership.left_at is not None:
        return None
    return membership


# --------------------------------------------------------------------------- the customer's side


@dataclass(frozen=True)
class RecentEntry:
    """What a wallet card shows of one ledger entry (read as plain columns, no ORM instance)."""

    amount: int
    reason_kind: str  # rendered in the reader's language (``webapp.ledger_reasons``)
    reason_params: dict
    created_at: datetime


@dataclass
class WalletCard:
    """One open card in a customer's wallet with its latest ledger entries."""

    membership: Membership
    recent: list[RecentEntry]

    @property
    def merchant(self) -> Merchant:
        return self.membership.merchant


class _WalletStatements:
    """The wallet's two statements, built once: the page pays for running them, not composing them."""

    def __init__(self) -> None:
        # The merchant and network come with the card (plugin slots need the instances), without
        # the long texts of the merchant's public page, which no card shows.
        self.cards = (
            select(Membership)
            .join(Membership.merchant)
            .join(Merchant.network)
            .where(Membership.user_id == bindparam("user_id"), Membership.left_at.is_(None))
            .options(
                contains_eager(Membership.merchant).defer(Merchant.description).defer(Merchant.opening_hours)
                .defer(Merchant.decline_reason),
                contains_eager(Membership.merchant).contains_eager(Merchant.network).defer(Network.description),
            )
            .order_by(Merchant.name, Membership.id)
        )
        ledger = LedgerEntry.__table__
        ranked = (
            select(
                ledger.c.membership_id, ledger.c.amount, ledger.c.reason_kind, ledger.c.reason_params,
                ledger.c.created_at,
                func.row_number()
                .over(partition_by=ledger.c.membership_id, order_by=(ledger.c.created_at.desc(), ledger.c.id.desc()))
                .label("position"),
            )
            .where(ledger.c.membership_id.in_(bindparam("membership_ids", expanding=True)))
            .subquery()
        )
        self.recent = (
            select(
                ranked.c.membership_id, ranked.c.amount, ranked.c.reason_kind, ranked.c.reason_params,
                ranked.c.created_at,
            )
            .where(ranked.c.position <= bindparam("recent"))
            .order_by(ranked.c.membership_id, ranked.c.position)
        )


_wallet_statements: _WalletStatements | None = None


def wallet_cards(session: Session, user_id: int, recent: int = 5) -> list[WalletCard]:
    """Every open card of a customer, each with its ``recent`` newest ledger entries.

    Two queries whatever the number of cards or entries: the memberships (with their merchants
    and network), then one windowed query for the newest entries of all of them.
    """
    global _wallet_statements
    if _wallet_statements is None:
        _wallet_statements = _WalletStatements()
    statements = _wallet_statements
    memberships = list(session.scalars(statements.cards, {"user_id": user_id}))
    if not memberships:
        return []
    by_membership: dict[int, list[RecentEntry]] = {m.id: [] for m in memberships}
    for membership_id, *entry in session.connection().execute(
        statements.recent, {"membership_ids": list(by_membership), "recent": recent}
    ):
        by_membership[membership_id].append(RecentEntry(*entry))
    return [WalletCard(m, by_membership[m.id]) for m in memberships]


def customer_membership(session: Session, user_id: int, membership_id: int) -> Membership:
    """A customer's own open card; anyone else's (or a closed one) is ``NotFound``."""
    membership = session.scalar(
        select(Membership)
        .where(
            Membership.id == membership_id,
            Membership.user_id == user_id,
            Membership.left_at.is_(None),
        )
        .options(joinedload(Membership.merchant).joinedload(Merchant.network))
    )
    if membership is None:
        raise NotFound(_("There is no such card in your wallet."))
    return membership


def card_history(
    session: Session, membership: Membership, page: int = 1, per_page: int = 25
) -> tuple[list[RecentEntry], int, int]:
    """One page of a card's ledger, newest first: (entries, page, pages).

    One statement gives the page and the total (a window count); a page past the end (a stale
    link) takes a second look for the last page.
    """
    ledger = LedgerEntry.__table__
    listing = (
        select(
            ledger.c.amount, ledger.c.reason_kind, ledger.c.reason_params, ledger.c.created_at,
            func.count().over().label("total"),
        )
        .where(ledger.c.membership_id == membership.id)
        .order_by(ledger.c.created_at.desc(), ledger.c.id.desc())
        .limit(per_page)
    )
    page = max(1, page)
    rows = session.connection().execute(listing.offset((page - 1) * per_page)).all()
    if not rows and page > 1:
        total = session.scalar(select(func.count(ledger.c.id)).where(ledger.c.membership_id == membership.id)) or 0
        page = max(1, -(-total // per_page))
        rows = session.connection().execute(listing.offset((page - 1) * per_page)).all()
    total = rows[0].total if rows else 0
    pages = max(1, -(-total // per_page))
    return [RecentEntry(*row[:4]) for row in rows], page, pages


@dataclass
class ConsentState:
    """What a customer currently agrees to at one merchant (``None``: never asked)."""

    merchant: Merchant
    membership: Membership | None
    data_processing: ConsentRecord | None
    marketing: ConsentRecord | None

    @property
    def processing_granted(self) -> bool:
        return bool(self.data_processing and self.data_processing.granted)

    @property
    def marketing_granted(self) -> bool:
        return bool(self.marketing and self.marketing.granted)


def consent_overview(session: Session, user_id: int) -> list[ConsentState]:
    """Per merchant the customer ever joined or consented to: the latest record per purpose."""
    latest = current_consents(session, user_id)
    memberships = {
        m.merchant_id: m
        for m in session.scalars(select(Membership).where(Membership.user_id == user_id))
    }
    merchant_ids = set(memberships) | {mid for mid, _purpose in latest if mid is not None}
    if not merchant_ids:
        return []
    merchants = session.scalars(
        select(Merchant).where(Merchant.id.in_(merchant_ids)).order_by(Merchant.name, Merchant.id)
    )
    return [
        ConsentState(
            merchant=merchant,
            membership=memberships.get(merchant.id),
            data_processing=latest.get((merchant.id, DATA_PROCESSING)),
            marketing=latest.get((merchant.id, MARKETING)),
        )
        for merchant in merchants
    ]


def consent_merchant(session: Session, user_id: int, merchant_id: int) -> Merchant:
    """A merchant the customer has a card or a consent record with; others are ``NotFound``."""
    known = session.scalar(
        select(Merchant.id).where(
            Merchant.id == merchant_id,
            Merchant.id.in_(select(Membership.merchant_id).where(Membership.user_id == user_id))
            | Merchant.id.in_(
                select(ConsentRecord.merchant_id).where(ConsentRecord.user_id == user_id)
            ),
        )
    )
    if known is None:
        raise NotFound(_("You have no card at this business."))
    return session.get(Merchant, merchant_id)


def change_consent(
    session: Session, user: User, merchant: Merchant, purpose: str, granted: bool,
    text_version: str,
) -> bool:
    """Grant or withdraw one consent from the account page; returns whether anything changed.

    Granting data processing again re-opens the card (the same path as joining); marketing needs
    an open card first.
    """
    if purpose not in (DATA_PROCESSING, MARKETING):
        raise NotFound(_("No such consent."))
    current = has_consent(session, user.id, merchant.id, purpose)
    membership = find_membership(session, user.id, merchant.id)
    card_open = membership is not None and membership.left_at is None
    if not granted:
        if not current and (purpose == MARKETING or not card_open):
            return False
        withdraw_consent(session, user, merchant, purpose, text_version)
        return True
    if purpose == DATA_PROCESSING:
        if current and card_open:
            return False
        join_merchant(
            session, user, merchant, consent_given=True, text_version=text_version,
            source="account",
        )
        return True
    if current:
        return False
    if not (card_open and has_consent(session, user.id, merchant.id, DATA_PROCESSING)):
        raise ValidationFailed(
            _("Marketing messages need an open card: agree to the processing of your data first.")
        )
    grant_consent(session, user, merchant, purpose, text_version)
    return True
