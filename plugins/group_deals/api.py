"""The group deals' POS API: look a deal voucher up by its code, redeem it at the till.

Redeeming records the sale through the core's purchase service with the code as the till's
voucher option, so the plugin's own adjustment (one guarded UPDATE inside the purchase) consumes
it exactly once, and the sale's ``Idempotency-Key`` makes a retry replay it.
"""

from __future__ import annotations

from datetime import datetime

from flask import g, request
from flask_babel import gettext as _
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from plugins.group_deals import services
from plugins.group_deals.guard import failed_lookup_guard
from plugins.group_deals.models import Voucher
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
MAX_CODE_LENGTH = 200  # a scanned QR text, not only the symbols


class VoucherOut(ApiModel):
    """A group-deal voucher of this business, as the till sees it."""

    id: int
    deal_id: int
    deal_title: str
    quantity: int = Field(description="Units bought at the deal price.")
    regular_price: int = Field(description="Per unit, minor units.")
    price: int = Field(description="The deal's final price per unit, minor units.")
    discount: int = Field(description="What the voucher takes off the bill, minor units.")
    status: str = Field(description="issued, redeemed or expired.")
    expires_at: datetime
    membership_id: int | None = Field(description="The holder's membership here; null if not a member.")
    usable: bool = Field(description="Whether it can be redeemed now.")


class VoucherLookupQuery(ApiModel):
    code: str = Field(min_length=1, max_length=MAX_CODE_LENGTH, description="The code as typed or the scanned QR text.")


class VoucherRedeemIn(ApiModel):
    code: str = Field(min_length=1, max_length=MAX_CODE_LENGTH, description="The voucher's code or QR text.")
    membership_id: int = Field(ge=1, le=MAX_ID, description="The holder's membership (from the lookup).")
    amount: int = Field(ge=1, le=MAX_AMOUNT, description="The whole bill in minor units, before the deal's discount.")
    points_to_use: int = Field(0, ge=0, le=MAX_AMOUNT, description="Points to pay with as well.")


class VoucherRedemptionOut(ApiModel):
    voucher_id: int
    discount: int = Field(description="What the voucher took off the bill, in minor units.")
    purchase: PurchaseOut


def _voucher_here(raw: str) -> Voucher:
    """A voucher of this business by code; unknown, malformed and other businesses' codes all
    answer the same 404 and count as failed lookups."""
    try:
        code = services.extract_code(raw)
    except codes.InvalidCode:
        raise NotFound(_("No such voucher here.")) from None
    failed_lookup_guard(failed=False)
    voucher = db.session.scalar(
        select(Voucher).options(joinedload(Voucher.deal)).where(Voucher.code_hash == services.code_hash(code))
    )
    if voucher is None or voucher.merchant_id != g.merchant.id:
        failed_lookup_guard(failed=True)
        raise NotFound(_("No such voucher here."))
    return voucher


@api_bp.get("/group-deals/vouchers/lookup")
@spec.validate(
    query=VoucherLookupQuery, resp=api_answers(403, 404, 422, HTTP_200=VoucherOut), tags=["group deals"],
    skip_validation=True,
)
def voucher_lookup():
    """Look up a group-deal voucher by its code.

    Only this business's vouchers are found; too many unknown codes answer 429 for a while.
    """
    require_scope("till")
    raw = request.args.get("code", "")
    if not raw.strip() or len(raw) > MAX_CODE_LENGTH:
        raise ValidationFailed(_("Send the voucher's code."), field="code")
    voucher = _voucher_here(raw)
    membership_id = db.session.scalar(select(Membership.id).where(
        Membership.merchant_id == g.merchant.id, Membership.user_id == voucher.user_id, Membership.left_at.is_(None),
    ))
    usable = voucher.status == "issued" and voucher.expires_at > utcnow() and membership_id is not None
    return json_response({
        "id": voucher.id,
        "deal_id": voucher.deal_id,
        "deal_title": voucher.deal.title,
        "quantity": voucher.quantity,
        "regular_price": voucher.regular_price,
        "price": voucher.price,
        "discount": (voucher.regular_price - voucher.price) * voucher.quantity,
        "status": voucher.status,
        "expires_at": iso(voucher.expires_at),
        "membership_id": membership_id,
        "usable": usable,
    })


@api_bp.post("/group-deals/vouchers/redeem")
@spec.validate(
    json=VoucherRedeemIn, headers=IdempotencyHeader,
    resp=api_answers(403, 404, 409, 422, HTTP_201=VoucherRedemptionOut), tags=["group deals"],
    skip_validation=True,
)
def voucher_redeem():
    """Redeem a group-deal voucher at the till.

    Records the sale of ``amount`` with the deal's discount (regular minus deal price, per unit).
    Exactly once per Idempotency-Key: a retry replays the sale or its decline; a used voucher is
    declined with 422.
    """
    require_scope("till")
    return redeem_at_till("group_deal_code", _redemption_json, MAX_CODE_LENGTH)


def _redemption_json(purchase: Purchase) -> dict:
    """From the sale and its voucher only, so a replay answers byte for byte alike."""
    voucher_id = db.session.scalar(select(Voucher.id).where(Voucher.redeemed_purchase_id == purchase.id))
    return {"voucher_id": voucher_id, "discount": purchase.discount, "purchase": purchase_json(purchase)}
