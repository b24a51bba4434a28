"""``/api/v1/``: the POS integration API's core endpoints and its OpenAPI document.

The machinery (keys, limits, problem+json, idempotency, pages) is in :mod:`webapp.api`, shared
with the plugins' endpoints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from flask import current_app, g, request
from flask_babel import gettext as _
from pydantic import Field, WithJsonSchema
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from webapp.api import (
    MAX_ID,
    MAX_PAGE_SIZE,
    ApiModel,
    IdempotencyHeader,
    PurchaseOut,
    api_answers,
    api_blueprint,
    domain_problem,
    http_problem,
    idempotency_key,
    idempotent,
    integer,
    is_api_request,
    iso,
    json_body,
    json_response,
    membership_here,
    openapi_document,
    page,
    public,
    purchase_json,
    require_scope,
    spec,
)
from webapp.errors import NotFound, ValidationFailed
from webapp.extensions import db, limiter
from webapp.models import Membership, Merchant, Network, Purchase
from webapp.services import memberships
from webapp.services import purchases as purchase_service
from webapp.services.analytics import dashboard_figures
from webapp.services.purchases import MAX_AMOUNT, MAX_LINES, MAX_QUANTITY, PurchaseDraft

__all__ = ["bp", "domain_problem", "http_problem", "is_api_request"]

bp = api_blueprint("api_v1", __name__)


# --------------------------------------------------------------------------- models (the document)


class MembershipOut(ApiModel):
    """A customer's membership at the key's business."""

    id: int
    name: str
    balance: int = Field(description="Points the customer can spend here.")
    total_spent: int = Field(description="Minor units.")
    visits: int
    joined_at: datetime
    last_purchase_at: datetime | None


class MembershipPage(ApiModel):
    data: list[MembershipOut]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page; null at the end.")


class PurchasePage(ApiModel):
    data: list[PurchaseOut]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page; null at the end.")


class Figures(ApiModel):
    customers: int
    repeat_customers: int
    purchases: int
    revenue: int
    average_check: int
    points_issued: int
    points_redeemed: int
    points_outstanding: int


class MerchantOut(ApiModel):
    """The key's business, its rules and its figures."""

    id: int
    name: str
    currency: str
    point_value: int = Field(description="What one point is worth, in minor units.")
    cashback_bp: int
    max_points_share_pct: int
    figures: Figures


class QuoteIn(ApiModel):
    membership_id: int = Field(ge=1, le=MAX_ID)
    amount: int = Field(ge=1, le=MAX_AMOUNT, description="The bill in minor units.")


class QuoteOut(ApiModel):
    """What the till would show before Confirm."""

    membership_id: int
    amount: int
    balance: int
    max_points: int = Field(description="The most points usable on this bill.")
    earn_rate_bp: int


class PurchaseItemIn(ApiModel):
    price_item_id: int = Field(ge=1, le=MAX_ID, description="An item of the key's merchant's price list.")
    quantity: int = Field(1, ge=1, le=MAX_QUANTITY)


class PurchaseIn(ApiModel):
    membership_id: int = Field(ge=1, le=MAX_ID)
    amount: int | None = Field(
        None, ge=1, le=MAX_AMOUNT,
        description="The bill in minor units. Required without ``items``; with them it may be left out "
        "(the items' sum is the bill) and, if sent, must equal that sum.",
    )
    points_to_use: int = Field(0, ge=0, le=MAX_AMOUNT, description="Points to pay with (at most the quote's max_points).")
    # Inline in the document (no $ref inside a request body: schemathesis resolves a nested
    # request reference only once per process).
    items: Annotated[list[PurchaseItemIn] | None, WithJsonSchema({
        "anyOf": [
            {"type": "array", "maxItems": MAX_LINES, "items": {
                "type": "object", "additionalProperties": False, "required": ["price_item_id"],
                "properties": {
                    "price_item_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY, "default": 1},
                },
            }},
            {"type": "null"},
        ],
    })] = Field(
        None, max_length=MAX_LINES,
        description="Optional lines from the price list; the sale records each item's name and "
        "price as they are now. An item of another merchant (or one deleted) answers 422.",
    )


class PageQuery(ApiModel):
    limit: int = Field(50, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(None, description="``next_cursor`` of the previous page.")


class PurchaseQuery(PageQuery):
    membership_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this customer's purchases.")


class LookupQuery(ApiModel):
    """Exactly one of the three."""

    card_code: str | None = Field(None, min_length=1, max_length=120, description="The code printed on the card.")
    qr: str | None = Field(None, min_length=1, max_length=120, description="The text of the card's QR code.")
    phone: str | None = Field(None, min_length=1, max_length=120, description="The customer's phone number.")


# --------------------------------------------------------------------------- the document itself


@bp.get("/openapi.json")
@limiter.exempt
@public
def openapi():
    """The OpenAPI 3.1 document of this API (no key needed)."""
    return json_response(openapi_document(current_app._get_current_object()))


# --------------------------------------------------------------------------- renderers


def membership_json(membership: Membership) -> dict:
    return {
        "id": membership.id,
        "name": membership.user.name,
        "balance": membership.balance,
        "total_spent": membership.total_spent,
        "visits": membership.visits,
        "joined_at": iso(membership.joined_at),
        "last_purchase_at": iso(membership.last_purchase_at),
    }


def _purchase_here(purchase_id: int) -> Purchase:
    purchase = db.session.scalar(
        select(Purchase).where(Purchase.id == purchase_id, Purchase.merchant_id == g.merchant.id)
    )
    if purchase is None:
        raise NotFound(_("No such purchase here."))
    return purchase


# --------------------------------------------------------------------------- endpoints


@bp.get("/merchant")
@spec.validate(resp=api_answers(HTTP_200=MerchantOut), tags=["merchant"], skip_validation=True)
def merchant_figures():
    """The key's business and its figures."""
    merchant: Merchant = g.merchant
    figures = dashboard_figures(merchant)
    network: Network = merchant.network
    return json_response({
        "id": merchant.id,
        "name": merchant.name,
        "currency": network.currency,
        "point_value": network.point_value_minor,
        "cashback_bp": merchant.cashback_bp,
        "max_points_share_pct": merchant.max_points_share_pct,
        "figures": {
            "customers": figures.customers,
            "repeat_customers": figures.repeat_customers,
            "purchases": figures.purchases,
            "revenue": figures.revenue,
            "average_check": figures.average_check,
            "points_issued": figures.points_issued,
            "points_redeemed": figures.points_redeemed,
            "points_outstanding": figures.points_outstanding,
        },
    })


@bp.get("/customers/lookup")
@spec.validate(
    query=LookupQuery, resp=api_answers(403, 404, 422, HTTP_200=MembershipOut), tags=["customers"],
    skip_validation=True,
)
def customer_lookup():
    """Find a member by card code, QR text or phone.

    Send exactly one of ``card_code``, ``qr`` (the scanned card QR text) or ``phone``.
    """
    require_scope("till")
    given = {name: request.args.get(name, "").strip() for name in ("card_code", "qr", "phone")}
    given = {name: value for name, value in given.items() if value}
    if len(given) != 1:
        raise ValidationFailed(_("Send exactly one of card_code, qr or phone."), field="card_code")
    ((name, value),) = given.items()
    if len(value) > 120:
        raise ValidationFailed(_("That is too long for a card code or phone number."), field=name)
    membership = memberships.find_customer_at_till(db.session, g.merchant, value)
    if membership is None:
        raise NotFound(_("No member of this business has that card or phone number."))
    return json_response(membership_json(membership))


@bp.get("/memberships")
@spec.validate(
    query=PageQuery, resp=api_answers(422, HTTP_200=MembershipPage), tags=["customers"], skip_validation=True
)
def membership_list():
    """The business's members, newest first."""
    statement = select(Membership).options(joinedload(Membership.user)).where(
        Membership.merchant_id == g.merchant.id, Membership.left_at.is_(None)
    )
    return page(statement, Membership.id, membership_json)


@bp.get("/memberships/<int(max=2147483647):membership_id>")
@spec.validate(resp=api_answers(404, HTTP_200=MembershipOut), tags=["customers"], skip_validation=True)
def membership_get(membership_id: int):
    """One member with their balance."""
    return json_response(membership_json(membership_here(membership_id)))


@bp.post("/quote")
@spec.validate(
    json=QuoteIn, resp=api_answers(403, 404, 422, HTTP_200=QuoteOut), tags=["sales"], skip_validation=True
)
def quote():
    """Quote a sale.

    What the till would show: the most points usable on ``amount`` and the earn rate. It writes
    nothing, so it needs no Idempotency-Key.
    """
    require_scope("till")
    body = json_body()
    membership = membership_here(integer(body, "membership_id", minimum=1, maximum=MAX_ID))
    amount = integer(body, "amount", minimum=1)
    result = purchase_service.quote(g.merchant, membership, amount)
    return json_response({
        "membership_id": membership.id,
        "amount": amount,
        "balance": result.balance,
        "max_points": result.max_points,
        "earn_rate_bp": result.earn_rate_bp,
    })


def _priced_lines(body: dict) -> tuple:
    """The body's optional ``items`` priced from the key's merchant's list (422 by field)."""
    items = body.get("items")
    if items is None:
        return ()
    if not isinstance(items, list) or len(items) > MAX_LINES:
        raise ValidationFailed(
            _("Send a list of at most %(count)s items.", count=MAX_LINES), field="items"
        )
    picks = []
    for number, item in enumerate(items):
        if not isinstance(item, dict) or set(item) - {"price_item_id", "quantity"}:
            raise ValidationFailed(
                _("Send each item as {price_item_id, quantity}."), field=f"items[{number}]"
            )
        picks.append((
            integer(item, "price_item_id", minimum=1, maximum=MAX_ID),
            integer(item, "quantity", required=False, default=1, minimum=1, maximum=MAX_QUANTITY),
        ))
    try:
        return purchase_service.priced_lines(db.session, g.merchant, picks)
    except ValidationFailed as error:
        raise ValidationFailed(error.message, field="items") from None


@bp.post("/purchases")
@spec.validate(
    json=PurchaseIn, headers=IdempotencyHeader,
    resp=api_answers(403, 404, 409, 422, HTTP_201=PurchaseOut), tags=["sales"], skip_validation=True,
)
def purchase_create():
    """Record a sale.

    Goes through the till's own service: one purchase per ``Idempotency-Key``; a retry replays
    it (or its stored decline), another body under the key answers 409.
    """
    require_scope("till")
    key = idempotency_key()
    body = json_body()
    membership = membership_here(integer(body, "membership_id", minimum=1, maximum=MAX_ID))
    lines = _priced_lines(body)
    if lines:
        amount = purchase_service.lines_total(lines)
        if body.get("amount") is not None and integer(body, "amount", minimum=1) != amount:
            raise ValidationFailed(
                _("The amount must be the sum of the items picked."), field="amount"
            )
        if not 1 <= amount <= MAX_AMOUNT:
            raise ValidationFailed(_("The amount must be greater than zero."), field="items")
    else:
        amount = integer(body, "amount", minimum=1)
    draft = PurchaseDraft(
        membership_id=membership.id,
        amount=amount,
        points_to_use=integer(body, "points_to_use", required=False),
        idempotency_key=key,
        lines=lines,
    )
    outcome = purchase_service.record_purchase(db.session, g.merchant, membership, draft)
    response = json_response(purchase_json(outcome.purchase), 201)
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/purchases")
@spec.validate(
    query=PurchaseQuery, resp=api_answers(422, HTTP_200=PurchasePage), tags=["sales"], skip_validation=True
)
def purchase_list():
    """Purchases, newest first."""
    statement = select(Purchase).where(Purchase.merchant_id == g.merchant.id)
    membership_id = request.args.get("membership_id", "")
    if membership_id:
        if not membership_id.isdigit() or len(membership_id) > 10 or int(membership_id) > MAX_ID:
            raise ValidationFailed(_("Send the membership id as a whole number."), field="membership_id")
        statement = statement.where(Purchase.membership_id == int(membership_id))
    return page(statement, Purchase.id, purchase_json)


@bp.get("/purchases/<int(max=2147483647):purchase_id>")
@spec.validate(resp=api_answers(404, HTTP_200=PurchaseOut), tags=["sales"], skip_validation=True)
def purchase_get(purchase_id: int):
    """One purchase."""
    return json_response(purchase_json(_purchase_here(purchase_id)))


@bp.post("/purchases/<int(max=2147483647):purchase_id>/refund")
@spec.validate(
    headers=IdempotencyHeader, resp=api_answers(403, 404, 409, 422, HTTP_200=PurchaseOut), tags=["sales"],
    skip_validation=True,
)
@idempotent
def purchase_refund(purchase_id: int):
    """Refund a purchase.

    Takes back the points it earned and gives back the points it used; a second refund answers
    409 (a retry of the same key replays the first answer).
    """
    require_scope("till")
    _purchase_here(purchase_id)
    purchase = purchase_service.refund_purchase(db.session, g.merchant, purchase_id, None)
    return json_response(purchase_json(purchase))
