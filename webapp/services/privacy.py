"""A customer's own data: the complete JSON export, and erasure that keeps the books balanced."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, joinedload

from webapp import ledger_reasons
from webapp.errors import Conflict, ValidationFailed
from webapp.models import (
    ConsentRecord,
    LedgerEntry,
    Membership,
    Merchant,
    Network,
    PasswordResetToken,
    Purchase,
    PurchaseItem,
    StaffRole,
    User,
    UserSession,
)
from webapp.models.base import utcnow
from webapp.plugins import registry
from webapp.services import accounts, memberships
from webapp.unit_of_work import unit_of_work

EXPORT_FORMAT_VERSION = 1
ERASED_NAME = "Erased customer"


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _plain(value: Any) -> Any:
    """Turn what plugins return (dataclasses, dates, decimals) into JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def export_customer(session: Session, user: User, now: datetime | None = None) -> dict[str, Any]:
    """Everything stored about ``user``: profile, cards, purchases, ledger, consents, sessions and
    every installed plugin's section. Secrets (password and token hashes) are never included."""
    cards = list(
        session.scalars(
            select(Membership)
            .where(Membership.user_id == user.id)
            .options(joinedload(Membership.merchant).joinedload(Merchant.network))
            .order_by(Membership.id)
        )
    )
    card_ids = [card.id for card in cards]
    merchants = {card.merchant_id: card.merchant for card in cards}
    purchases = list(
        session.scalars(
            select(Purchase).where(Purchase.membership_id.in_(card_ids)).order_by(Purchase.id)
        )
    ) if card_ids else []
    lines: dict[int, list[PurchaseItem]] = {}
    if purchases:  # the items bought, one query for every purchase
        for line in session.scalars(
            select(PurchaseItem)
            .where(PurchaseItem.purchase_id.in_([purchase.id for purchase in purchases]))
            .order_by(PurchaseItem.id)
        ):
            lines.setdefault(line.purchase_id, []).append(line)
    entries = list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.membership_id.in_(card_ids))
            .order_by(LedgerEntry.id)
        )
    ) if card_ids else []
    consents = list(
        session.scalars(
            select(ConsentRecord).where(ConsentRecord.user_id == user.id).order_by(ConsentRecord.id)
        )
    )
    missing = {c.merchant_id for c in consents if c.merchant_id and c.merchant_id not in merchants}
    if missing:
        merchants.update(
            {m.id: m for m in session.scalars(select(Merchant).where(Merchant.id.in_(missing)))}
        )
    sessions = list(
        session.scalars(
            select(UserSession).where(UserSession.user_id == user.id).order_by(UserSession.id)
        )
    )

    def merchant_name(merchant_id: int | None) -> str | None:
        merchant = merchants.get(merchant_id) if merchant_id else None
        return merchant.name if merchant else None

    plugin_sections = [
        {"source": section.source, "data": _plain(section.data)}
        for section in registry().pm.hook.neighbourly_collect_customer_data(user=user)
        if section is not None
    ]
    return {
        "format": "neighbourly-customer-export",
        "format_version": EXPORT_FORMAT_VERSION,
        "exported_at": (now or utcnow()).isoformat(),
        "profile": {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "phone": user.phone,
            "birthday": (
                {"day": user.birth_day, "month": user.birth_month, "year": user.birth_year}
                if user.birth_day else None
            ),
            "locale": user.locale,
            "card_code": user.card_code,
            "created_at": _when(user.created_at),
            "erased_at": _when(user.erased_at),
        },
        "memberships": [
            {
                "id": card.id,
                "merchant": card.merchant.name,
                "merchant_slug": card.merchant.slug,
                "network": card.merchant.network.name,
                "currency": card.merchant.network.currency,
                "points_balance": card.balance,
                "total_spent_minor": card.total_spent,
                "visits": card.visits,
                "joined_at": _when(card.joined_at),
                "join_source": card.join_source,
                "referrer_membership_id": card.referrer_id,
                "last_purchase_at": _when(card.last_purchase_at),
                "left_at": _when(card.left_at),
            }
            for card in cards
        ],
        "purchases": [
            {
                "id": purchase.id,
                "membership_id": purchase.membership_id,
                "merchant": merchant_name(purchase.merchant_id),
                "currency": merchants[purchase.merchant_id].network.currency
                if purchase.merchant_id in merchants
                else None,
                "amount_minor": purchase.amount,
                "points_used": purchase.points_used,
                "points_value_minor": purchase.points_value,
                "certificate_value_used_minor": purchase.certificate_value_used,
                "discount_minor": purchase.discount,
                "amount_paid_minor": purchase.amount_paid,
                "points_earned": purchase.points_earned,
                "note": purchase.note,
                "items": [
                    {"name": line.name, "unit_price_minor": line.unit_price, "quantity": line.quantity}
                    for line in lines.get(purchase.id, [])
                ],
                "created_at": _when(purchase.created_at),
                "refunded_at": _when(purchase.refunded_at),
            }
            for purchase in purchases
        ],
        "ledger_entries": [
            {
                "id": entry.id,
                "membership_id": entry.membership_id,
                "merchant": merchant_name(entry.merchant_id),
                "kind": entry.kind,
                "points": entry.amount,
                "reason": ledger_reasons.render(entry.reason_kind, entry.reason_params),
                "reason_kind": entry.reason_kind,
                "reason_params": entry.reason_params,
                "source": entry.source,
                "purchase_id": entry.purchase_id,
                "object_ref": entry.object_ref,
                "created_at": _when(entry.created_at),
            }
            for entry in entries
        ],
        "consents": [
            {
                "merchant": merchant_name(record.merchant_id),
                "purpose": record.purpose,
                "granted": record.granted,
                "text_version": record.text_version,
                "text": record.text,
                "created_at": _when(record.created_at),
            }
            for record in consents
        ],
        "sessions": [
            {
                "id": row.id,
                "user_agent": row.user_agent,
                "created_at": _when(row.created_at),
                "last_seen_at": _when(row.last_seen_at),
                "revoked_at": _when(row.revoked_at),
            }
            for row in sessions
        ],
        "plugins": plugin_sections,
    }


def export_json(session: Session, user: User) -> str:
    return json.dumps(export_customer(session, user), ensure_ascii=False, indent=2)


def check_erasure_confirmation(user: User, typed_email: str) -> None:
    """Erasure cannot be undone, so the customer types their e-mail address to confirm it."""
    if (typed_email or "").strip().lower() != (user.email or "").lower():
        raise ValidationFailed(
            _("Type the e-mail address of this account exactly to confirm the erasure.")
        )


def erase_customer(session: Session, user: User, text_version: str = "erasure") -> User:
    """Remove a customer's personal data; purchases and the points ledger stay, pseudonymous.

    Balances and sums do not change, so merchants' books still add up. Everything happens in one
    transaction, plugins' personal data included (``neighbourly_customer_erased``).
    """
    if user.erased_at is not None:
        return user
    owned = session.scalars(
        select(Merchant.name)
        .join(StaffRole, StaffRole.merchant_id == Merchant.id)
        .where(StaffRole.user_id == user.id, StaffRole.role == "owner")
    ).all()
    if owned:
        raise Conflict(
            _(
                "You own %(businesses)s. Hand the business over to another owner before erasing "
                "your account.",
                businesses=", ".join(owned),
            )
        )
    if session.scalar(select(Network.id).where(Network.operator_id == user.id)) is not None:
        raise Conflict(_("You operate a network. Hand it over before erasing your account."))
    with unit_of_work(session):
        # Withdraw every consent that is still granted: nothing may be processed from now on.
        for (merchant_id, purpose), record in memberships.current_consents(session, user.id).items():
            if record.granted and merchant_id is not None:
                merchant = session.get(Merchant, merchant_id)
                memberships.record_consent(
                    session, user, merchant, purpose, False, text_version,
                    memberships.consent_text(merchant, purpose),
                )
        now = utcnow()
        session.execute(
            update(Membership)
            .where(Membership.user_id == user.id, Membership.left_at.is_(None))
            .values(left_at=now)
        )
        session.execute(delete(StaffRole).where(StaffRole.user_id == user.id))
        accounts.revoke_all_sessions(session, user.id)
        session.execute(
            update(UserSession).where(UserSession.user_id == user.id).values(user_agent="")
        )
        session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
            .values(used_at=now)
        )
        user.name = ERASED_NAME
        user.email = f"erased-{user.id}@erased.invalid"
        user.phone = None
        user.birth_day = user.birth_month = user.birth_year = None
        user.password_hash = ""
        user.locale = None
        # A printed or screenshotted card must stop working at the till.
        user.card_code = accounts.new_card_code(session)
        user.erased_at = now
        session.flush()
        registry().pm.hook.neighbourly_customer_erased(user=user, session=session)
    return user

