"""The certificates' POS API: look a certificate up by its code, redeem it at the till.

Redeeming records the sale through the core's purchase service with the code as the till's
certificate option, so the plugin's own redemption (one guarded UPDATE inside the purchase)
consumes it exactly once, and the sale's ``Idempotency-Key`` makes a retry replay it.
"""

from __future__ import annotations

from datetime import datetime

from flask import g, request
from flask_babel import gettext as _
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from plugins.cross_marketing import services
from plugins.cross_marketing.guard import failed_lookup_guard
from plugins.cross_marketing.models import Certificate, CertificateEvent
from webapp.plugin_api import (
    MAX_AMOUNT,
    MAX_ID,
    ApiModel,
    IdempotencyHeader,
    Membership,
    NotFound,
    Purchase,
    PurchaseOut,
    ValidationFailed,
    api_answers,
    codes,
    db,
    iso,
    json_response,
    plugin_api_blueprint,
    purchase_json,
    redeem_at_till,
    require_scope,
    spec,
    utcnow,
)

api_bp = plugin_api_blueprint(services.PLUGIN_NAME, __name__)
MAX_CODE_LENGTH = 200  # a pasted link or QR text, not only the 16 symbols


class CertificateOut(ApiModel):
    """A certificate this business honours, as the till sees it."""

    id: int
    code_last4: str
    status: str = Field(description="issued, attached, redeemed, voided or expired.")
    face_value: int = Field(description="Minor units.")
    balance: int = Field(description="What is left to spend, in minor units.")
    min_purchase: int = Field(description="The smallest bill it can be used on, in minor units.")
    expires_at: datetime
    from_business: str = Field(description="The neighbour who handed it out.")
    membership_id: int | None = Field(description="The holder's membership here; null if not a member.")
    usable: bool = Field(description="Whether it can be redeemed here now (by its holder).")
    reason: str | None = Field(description="Why it cannot be used, when it cannot.")


class CertificateLookupQuery(ApiModel):
    code: str = Field(
        min_length=1, max_length=MAX_CODE_LENGTH,
        description="The code as typed, the scanned QR text (neighbourly:cert:…) or the certificate link.",
    )


class RedeemIn(ApiModel):
    code: str = Field(min_length=1, max_length=MAX_CODE_LENGTH, description="The certificate's code, QR text or link.")
    membership_id: int = Field(ge=1, le=MAX_ID, description="The holder's membership (from the lookup).")
    amount: int = Field(ge=1, le=MAX_AMOUNT, description="The whole bill in minor units.")
    points_to_use: int = Field(0, ge=0, le=MAX_AMOUNT, description="Points to pay with as well.")


class RedemptionOut(ApiModel):
    """The sale the certificate paid for (in part)."""

    certificate_id: int
    value_used: int = Field(description="What the certificate paid, in minor units.")
    purchase: PurchaseOut


def _certificate_here(raw: str) -> Certificate:
    """A certificate this business issued, by code; unknown codes, malformed ones and other
    businesses' certificates all answer the same 404 and count as failed lookups."""
    try:
        code = services.extract_code(raw)
    except codes.InvalidCode:
        raise NotFound(_("No such certificate here.")) from None
    failed_lookup_guard(failed=False)
    certificate = db.session.scalar(
        select(Certificate)
        .options(joinedload(Certificate.distributor), joinedload(Certificate.offer))
        .where(Certificate.code_hash == services.code_hash(code))
    )
    if certificate is None or certificate.issuer_id != g.merchant.id:
        failed_lookup_guard(failed=True)
        raise NotFound(_("No such certificate here."))
    return certificate


@api_bp.get("/certificates/lookup")
@spec.validate(
    query=CertificateLookupQuery, resp=api_answers(403, 404, 422, HTTP_200=CertificateOut), tags=["certificates"],
    skip_validation=True,
)
def certificate_lookup():
    """Look up a certificate by its code.

    Only certificates this business honours are found. Answers who holds it (their membership
    here) and whether it can be used now; too many unknown codes answer 429 for a while.
    """
    require_scope("till")
    raw = request.args.get("code", "")
    if not raw.strip() or len(raw) > MAX_CODE_LENGTH:
        raise ValidationFailed(_("Send the certificate's code."), field="code")
    certificate = _certificate_here(raw)
    membership_id = db.session.scalar(
        select(Membership.id).where(
            Membership.merchant_id == g.merchant.id, Membership.user_id == certificate.holder_id,
            Membership.left_at.is_(None),
        )
    )
    refusal = services._refusal(certificate, g.merchant, utcnow())
    if refusal is None and membership_id is None:
        reason = _("The holder is not a member of this business yet; they can join at the till.")
    else:
        reason = refusal.message if refusal else None
    return json_response({
        "id": certificate.id,
        "code_last4": certificate.code_last4,
        "status": certificate.status,
        "face_value": certificate.face_value,
        "balance": certificate.balance,
        "min_purchase": certificate.offer.min_purchase,
        "expires_at": iso(certificate.expires_at),
        "from_business": certificate.distributor.name,
        "membership_id": membership_id,
        "usable": reason is None,
        "reason": reason,
    })


@api_bp.post("/certificates/redeem")
@spec.validate(
    json=RedeemIn, headers=IdempotencyHeader,
    resp=api_answers(403, 404, 409, 422, HTTP_201=RedemptionOut), tags=["certificates"],
    skip_validation=True,
)
def certificate_redeem():
    """Redeem a certificate at the till.

    Records the sale of ``amount`` with the certificate paying what it can (the till's own
    rules: the holder, the minimum bill, the expiry). Exactly once per Idempotency-Key: a retry
    replays the sale or its decline; a used certificate is declined with 422.
    """
    require_scope("till")
    return redeem_at_till("certificate", _redemption_json, MAX_CODE_LENGTH)


def _redemption_json(purchase: Purchase) -> dict:
    """From the sale and its ``redeemed`` event only, so a replay answers byte for byte alike."""
    certificate_id = db.session.scalar(
        select(CertificateEvent.certificate_id).where(
            CertificateEvent.purchase_id == purchase.id, CertificateEvent.kind == "redeemed"
        )
    )
    return {
        "certificate_id": certificate_id,
        "value_used": purchase.certificate_value_used,
        "purchase": purchase_json(purchase),
    }
