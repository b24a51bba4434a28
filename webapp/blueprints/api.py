"""``/api/v1/``: the POS integration API (API keys, problem+json errors, idempotent POSTs)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from webapp.errors import (
    Forbidden,
    IdempotencyConflict,
    NeighbourlyError,
    NotFound,
    ValidationFailed,
)
from webapp.extensions import csrf, db, limiter, upsert_insert
from webapp.models import ApiIdempotentResponse, Membership, Merchant, Network, Purchase
from webapp.services import api_keys, memberships
from webapp.services import purchases as purchase_service
from webapp.services.analytics import dashboard_figures
from webapp.services.purchases import MAX_AMOUNT, PurchaseDraft

PREFIX = "/api/"
bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
# Calls carry an API key, never the site's cookies, so a forged cross-site form cannot use them.
csrf.exempt(bp)

PROBLEM_TYPE_BASE = "/api/v1/problems/"
MAX_IDEMPOTENCY_KEY_LENGTH = 64
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


class Unauthorized(NeighbourlyError):
    """A valid API key is required."""

    status_code = 401


def _problem_slug(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> Response:
    """An RFC 9457 problem document; ``type`` is stable per error class, ``detail`` translated."""
    body = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="neighbourly"'
    return response


def is_api_request() -> bool:
    return request.path.startswith(PREFIX)


def domain_problem(error: NeighbourlyError) -> Response:
    extra: dict[str, Any] = {}
    field = error.details.get("field")
    if field:
        extra["errors"] = [{"field": field, "detail": error.message}]
    if isinstance(error.details.get("errors"), list):
        extra["errors"] = error.details["errors"]
    return problem(
        error.status_code, _problem_slug(type(error).__name__), _("That did not work"), error.message,
        **extra,
    )


# HTTP errors from Werkzeug and the limiter, each with its own stable type.
HTTP_PROBLEMS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
    503: "service-unavailable",
}


def http_problem(code: int, description: str | None = None) -> Response:
    messages = {
        404: _("There is nothing at this address."),
        405: _("This method is not allowed here."),
        413: _("The request body is too large."),
        429: _("Too many requests with this key. Wait and try again."),
        503: _("The service is unavailable for a moment; nothing was recorded. Try again."),
    }
    slug = HTTP_PROBLEMS.get(code, "internal-error" if code >= 500 else "bad-request")
    detail = messages.get(code) or _("The request could not be understood.")
    if code >= 500 and code != 503:
        detail = _("Something went wrong on our side. Nothing was saved; please try again.")
    return problem(code, slug, _("That did not work"), detail)


# --------------------------------------------------------------------------- keys and limits


def _bearer_secret() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _space, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def rate_limit_key() -> str:
    """Limits count per key: the hash of the presented secret (the limiter runs before auth)."""
    return "api-key:" + hashlib.sha256(_bearer_secret().encode()).hexdigest()[:32]


def rate_limit_value() -> str:
    return current_app.config.get("API_RATE_LIMIT", "600 per minute")


limiter.limit(rate_limit_value, key_func=rate_limit_key)(bp)


@bp.before_request
def authenticate() -> None:
    key = api_keys.authenticate(db.session, _bearer_secret(), current_app.config["CODE_HASH_KEY"])
    if key is None:
        raise Unauthorized(_("Send a valid API key as \"Authorization: Bearer <key>\"."))
    merchant = db.session.scalar(
        select(Merchant).options(joinedload(Merchant.network)).where(Merchant.id == key.merchant_id)
    )
    g.api_key, g.merchant = key, merchant


@bp.after_request
def rate_limit_headers(response: Response) -> Response:
    """``RateLimit-*`` headers (the IETF draft's names) from the limit this call counted against."""
    current = limiter.current_limit
    if current is not None:
        response.headers["RateLimit-Limit"] = str(current.limit.amount)
        response.headers["RateLimit-Remaining"] = str(max(current.remaining, 0))
        reset = max(0, int(current.reset_at - datetime.now().timestamp()))
        response.headers["RateLimit-Reset"] = str(reset)
    response.headers["Cache-Control"] = "no-store"
    return response


def require_scope(scope: str) -> None:
    """``till`` keys may do everything; ``read`` keys only read."""
    if scope == "till" and g.api_key.scope != "till":
        raise Forbidden(_("This API key may only read; create a till key to record sales."))


# --------------------------------------------------------------------------- request parsing


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed(_("Send a JSON object as the request body."))
    return body


def _integer(body: dict[str, Any], name: str, *, required: bool = True, default: int = 0,
             minimum: int = 0, maximum: int = MAX_AMOUNT) -> int:
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationFailed(_("This field is required."), field=name)
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(_("Send a whole number in minor units."), field=name)
    if value < minimum or value > maximum:
        raise ValidationFailed(
            _("Send a number from %(min)s to %(max)s.", min=minimum, max=maximum), field=name
        )
    return value


def _idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        raise ValidationFailed(_("Send an Idempotency-Key header with every POST."), field="Idempotency-Key")
    if not IDEMPOTENCY_KEY_PATTERN.match(key):
        raise ValidationFailed(
            _("The Idempotency-Key must be 1 to 64 letters, digits or -_.: signs."), field="Idempotency-Key"
        )
    # The till's keys live in the same per-merchant namespace; the prefix keeps them apart.
    return "api:" + key


def _membership_here(membership_id: int) -> Membership:
    membership = db.session.scalar(
        select(Membership).options(joinedload(Membership.user)).where(
            Membership.id == membership_id, Membership.merchant_id == g.merchant.id,
            Membership.left_at.is_(None),
        )
    )
    if membership is None:
        raise NotFound(_("No such customer here."))
    return membership


def _purchase_here(purchase_id: int) -> Purchase:
    purchase = db.session.scalar(
        select(Purchase).where(Purchase.id == purchase_id, Purchase.merchant_id == g.merchant.id)
    )
    if purchase is None:
        raise NotFound(_("No such purchase here."))
    return purchase


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def membership_json(membership: Membership) -> dict[str, Any]:
    return {
        "id": membership.id,
        "name": membership.user.name,
        "balance": membership.balance,
        "total_spent": membership.total_spent,
        "visits": membership.visits,
        "joined_at": _iso(membership.joined_at),
        "last_purchase_at": _iso(membership.last_purchase_at),
    }


def purchase_json(purchase: Purchase) -> dict[str, Any]:
    """Only the purchase's own columns: a replay of its key answers byte for byte alike."""
    return {
        "id": purchase.id,
        "membership_id": purchase.membership_id,
        "amount": purchase.amount,
        "points_used": purchase.points_used,
        "points_value": purchase.points_value,
        "certificate_value_used": purchase.certificate_value_used,
        "discount": purchase.discount,
        "amount_paid": purchase.amount_paid,
        "points_earned": purchase.points_earned,
        "earn_rate_bp": purchase.earn_rate_bp,
        "note": purchase.note,
        "created_at": _iso(purchase.created_at),
        "refunded_at": _iso(purchase.refunded_at),
    }


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


# --------------------------------------------------------------------------- cursor pagination


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": last_id}).encode()).decode().rstrip("=")


def _decode_cursor(text: str) -> int | None:
    if not text:
        return None
    try:
        padded = text + "=" * (-len(text) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["before"]
    except (ValueError, KeyError, TypeError):
        raise ValidationFailed(_("The cursor is not one this API gave out."), field="cursor") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(_("The cursor is not one this API gave out."), field="cursor")
    return value


def _page_size() -> int:
    text = request.args.get("limit", "")
    if not text:
        return DEFAULT_PAGE_SIZE
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            _("The limit must be a whole number from 1 to %(max)s.", max=MAX_PAGE_SIZE), field="limit"
        )
    return int(text)


def _page(statement, id_column, render) -> Response:
    """Newest first by id; the cursor names the last id seen, so rows inserted meanwhile (which
    get higher ids) never shift a page or repeat a row."""
    limit = _page_size()
    before = _decode_cursor(request.args.get("cursor", ""))
    if before is not None:
        statement = statement.where(id_column < before)
    rows = list(db.session.scalars(statement.order_by(id_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return _json({
        "data": [render(row) for row in rows],
        "next_cursor": _encode_cursor(rows[-1].id) if more else None,
    })


# --------------------------------------------------------------------------- endpoints


@bp.get("/merchant")
def merchant_figures():
    merchant: Merchant = g.merchant
    figures = dashboard_figures(merchant)
    network: Network = merchant.network
    return _json({
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
def customer_lookup():
    """Find a member by ``card_code``, ``qr`` (the scanned card QR text) or ``phone``."""
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
    return _json(membership_json(membership))


@bp.get("/memberships")
def membership_list():
    statement = select(Membership).options(joinedload(Membership.user)).where(
        Membership.merchant_id == g.merchant.id, Membership.left_at.is_(None)
    )
    return _page(statement, Membership.id, membership_json)


@bp.get("/memberships/<int:membership_id>")
def membership_get(membership_id: int):
    return _json(membership_json(_membership_here(membership_id)))


@bp.post("/quote")
def quote():
    """What the till would show: the most points usable on ``amount`` and the earn rate."""
    require_scope("till")
    body = _json_body()
    membership = _membership_here(_integer(body, "membership_id", minimum=1, maximum=2**62))
    amount = _integer(body, "amount", minimum=1)
    result = purchase_service.quote(g.merchant, membership, amount)
    return _json({
        "membership_id": membership.id,
        "amount": amount,
        "balance": result.balance,
        "max_points": result.max_points,
        "earn_rate_bp": result.earn_rate_bp,
    })


@bp.post("/purchases")
def purchase_create():
    """Record a sale through the till's own service: one purchase per ``Idempotency-Key``, a
    retry replays it (or its stored decline), another body under the key answers 409."""
    require_scope("till")
    key = _idempotency_key()
    body = _json_body()
    membership = _membership_here(_integer(body, "membership_id", minimum=1, maximum=2**62))
    draft = PurchaseDraft(
        membership_id=membership.id,
        amount=_integer(body, "amount", minimum=1),
        points_to_use=_integer(body, "points_to_use", required=False),
        idempotency_key=key,
    )
    outcome = purchase_service.record_purchase(db.session, g.merchant, membership, draft)
    response = _json(purchase_json(outcome.purchase), 201)
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/purchases")
def purchase_list():
    statement = select(Purchase).where(Purchase.merchant_id == g.merchant.id)
    membership_id = request.args.get("membership_id", "")
    if membership_id:
        if not membership_id.isdigit() or len(membership_id) > 18:
            raise ValidationFailed(_("Send the membership id as a whole number."), field="membership_id")
        statement = statement.where(Purchase.membership_id == int(membership_id))
    return _page(statement, Purchase.id, purchase_json)


@bp.get("/purchases/<int:purchase_id>")
def purchase_get(purchase_id: int):
    return _json(purchase_json(_purchase_here(purchase_id)))


def _fingerprint() -> str:
    return hashlib.sha256(request.method.encode() + request.path.encode() + request.get_data()).hexdigest()


def _stored_response(key: str) -> ApiIdempotentResponse | None:
    return db.session.scalar(
        select(ApiIdempotentResponse).where(
            ApiIdempotentResponse.merchant_id == g.merchant.id,
            ApiIdempotentResponse.idempotency_key == key,
        )
    )


def _replay_stored(stored: ApiIdempotentResponse) -> Response:
    if stored.fingerprint != _fingerprint():
        return domain_problem(IdempotencyConflict())
    content_type = "application/problem+json" if stored.status >= 400 else "application/json"
    response = Response(stored.body, status=stored.status, mimetype=content_type)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(view):
    """For POSTs other than purchases: keep the first answer (errors included) in one table."""

    def wrapper(**kwargs):
        key = _idempotency_key()
        stored = _stored_response(key)
        if stored is not None:
            return _replay_stored(stored)
        try:
            response = view(**kwargs)
        except NeighbourlyError as error:
            db.session.rollback()
            response = domain_problem(error)
        insert = upsert_insert(db.session)
        db.session.execute(
            insert(ApiIdempotentResponse)
            .values(
                merchant_id=g.merchant.id, idempotency_key=key, fingerprint=_fingerprint(),
                status=response.status_code, body=response.get_data(as_text=True),
                created_at=datetime.now().astimezone(),
            )
            .on_conflict_do_nothing(index_elements=["merchant_id", "idempotency_key"])
        )
        db.session.commit()
        # A concurrent twin may have stored its answer first: everyone answers with that one.
        stored = _stored_response(key)
        replay = _replay_stored(stored)
        if stored.body == response.get_data(as_text=True) and stored.status == response.status_code:
            return response
        return replay

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@bp.post("/purchases/<int:purchase_id>/refund")
@idempotent
def purchase_refund(purchase_id: int):
    require_scope("till")
    _purchase_here(purchase_id)
    purchase = purchase_service.refund_purchase(db.session, g.merchant, purchase_id, None)
    return _json(purchase_json(purchase))
