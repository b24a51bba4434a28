"""The POS API's public surface: keys and limits, problem+json errors, idempotent POSTs, cursor
pages and the OpenAPI document. The core's ``/api/v1/`` views use it, and so do plugins, whose
endpoints come through the ``neighbourly_register_api`` hook (see :func:`plugin_api_blueprint`).

Views keep their hand-written parsing (translated messages, field names in problem documents);
``spec.validate(..., skip_validation=True)`` only describes them for the OpenAPI document, and
the Schemathesis tests check that the description and the answers agree.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from flask_babel import gettext as _
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response as Answers
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
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
from webapp.models import ApiIdempotentResponse, Membership, Merchant, Purchase
from webapp.unit_of_work import unit_of_work

PREFIX = "/api/"
URL_PREFIX = "/api/v1"
PROBLEM_TYPE_BASE = "/api/v1/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_ID = 2**31 - 1  # ids are 32-bit columns: a larger one is simply not there
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")

__all__ = [
    "Answers", "ApiModel", "Problem", "PurchaseOut", "purchase_json", "text", "api_answers", "domain_problem", "idempotency_key",
    "idempotent", "integer", "iso", "json_body", "json_response", "membership_here", "page",
    "plugin_api_blueprint", "redeem_at_till", "require_scope", "spec",
]


class Unauthorized(NeighbourlyError):
    """A valid API key is required."""

    status_code = 401


# --------------------------------------------------------------------------- problem documents


def _problem_slug(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> Response:
    """An RFC 9457 problem document; ``type`` is stable per error class, ``detail`` translated."""
    body = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
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


def public(view):
    """Mark a view of an API blueprint as open without a key (the OpenAPI document)."""
    view.api_public = True
    return view


def authenticate() -> None:
    """``g.api_key`` and ``g.merchant`` from the bearer key, or a 401 problem."""
    from webapp.services import api_keys

    if getattr(current_app.view_functions.get(request.endpoint or ""), "api_public", False):
        return

    key = api_keys.authenticate(db.session, _bearer_secret(), current_app.config["CODE_HASH_KEY"])
    if key is None:
        raise Unauthorized(_("Send a valid API key as \"Authorization: Bearer <key>\"."))
    merchant = db.session.scalar(
        select(Merchant).options(joinedload(Merchant.network)).where(Merchant.id == key.merchant_id)
    )
    g.api_key, g.merchant = key, merchant


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


def api_blueprint(name: str, import_name: str, url_prefix: str = URL_PREFIX) -> Blueprint:
    """A blueprint whose every call needs an API key: no CSRF (no cookies are used), the per-key
    rate limit, ``RateLimit-*`` headers, and the key's merchant in ``g.merchant``."""
    blueprint = Blueprint(name, import_name, url_prefix=url_prefix)
    csrf.exempt(blueprint)
    limiter.limit(rate_limit_value, key_func=rate_limit_key)(blueprint)
    blueprint.before_request(authenticate)
    blueprint.after_request(rate_limit_headers)
    return blueprint


def plugin_api_blueprint(plugin_name: str, import_name: str) -> Blueprint:
    """A blueprint of API endpoints for a plugin, under ``/api/v1/``.

    Calls from a key whose merchant has not enabled the plugin answer 404 (as an unknown
    address would), so a POS cannot tell an installed-but-off plugin from a missing one.
    """
    blueprint = api_blueprint(f"api_{plugin_name}", import_name)

    @blueprint.before_request
    def _require_enabled() -> None:
        from webapp.plugins import is_enabled

        if not is_enabled(g.merchant, plugin_name):
            raise NotFound(_("There is nothing at this address."))

    return blueprint


def register_plugin_apis(app: Flask, registry) -> None:
    for blueprints in registry.pm.hook.neighbourly_register_api(app=app):
        for blueprint in blueprints or []:
            if not blueprint.name.startswith("api_") or blueprint.url_prefix != URL_PREFIX:
                raise RuntimeError(f"{blueprint.name}: make API blueprints with plugin_api_blueprint()")
            app.register_blueprint(blueprint)


def require_scope(scope: str) -> None:
    """``till`` keys may do everything; ``read`` keys only read."""
    if scope == "till" and g.api_key.scope != "till":
        raise Forbidden(_("This API key may only read; create a till key to record sales."))


# --------------------------------------------------------------------------- request parsing


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed(_("Send a JSON object as the request body."))
    return body


def integer(body: dict[str, Any], name: str, *, required: bool = True, default: int = 0,
            minimum: int = 0, maximum: int | None = None) -> int:
    from webapp.services.purchases import MAX_AMOUNT

    maximum = MAX_AMOUNT if maximum is None else maximum
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


def text(body: dict[str, Any], name: str, *, max_length: int = 120) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(_("This field is required."), field=name)
    if len(value) > max_length:
        raise ValidationFailed(_("That is too long."), field=name)
    return value.strip()


def idempotency_key() -> str:
    """The request's ``Idempotency-Key``, prefixed so that till keys and API keys never meet."""
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        raise ValidationFailed(_("Send an Idempotency-Key header with every POST."), field="Idempotency-Key")
    if not IDEMPOTENCY_KEY_PATTERN.match(key):
        raise ValidationFailed(
            _("The Idempotency-Key must be 1 to 64 letters, digits or -_.: signs."), field="Idempotency-Key"
        )
    return "api:" + key


def membership_here(membership_id: int) -> Membership:
    """A current member of the key's merchant, or a 404 (another merchant's ids look missing)."""
    membership = db.session.scalar(
        select(Membership).options(joinedload(Membership.user)).where(
            Membership.id == membership_id, Membership.merchant_id == g.merchant.id,
            Membership.left_at.is_(None),
        )
    )
    if membership is None:
        raise NotFound(_("No such customer here."))
    return membership


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def redeem_at_till(option: str, answer: Callable[[Purchase], dict], max_code_length: int = 200) -> Response:
    """A plugin's "redeem this code at the till" call: the sale of the body's ``amount`` (and
    ``points_to_use``) for its ``membership_id``, with the body's ``code`` as the till's option
    ``option``, recorded once per Idempotency-Key (a retry replays it); 201 with ``answer(purchase)``."""
    from webapp.services.purchases import PurchaseDraft, record_purchase

    key = idempotency_key()
    body = json_body()
    code = text(body, "code", max_length=max_code_length)
    membership = membership_here(integer(body, "membership_id", minimum=1, maximum=MAX_ID))
    draft = PurchaseDraft(
        membership_id=membership.id,
        amount=integer(body, "amount", minimum=1),
        points_to_use=integer(body, "points_to_use", required=False),
        idempotency_key=key,
        options={option: code},
    )
    outcome = record_purchase(db.session, g.merchant, membership, draft)
    response = json_response(answer(outcome.purchase), 201)
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


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


def page(statement, id_column, render) -> Response:
    """Newest first by id; the cursor names the last id seen, so rows inserted meanwhile (which
    get higher ids) never shift a page or repeat a row."""
    limit = _page_size()
    before = _decode_cursor(request.args.get("cursor", ""))
    if before is not None:
        statement = statement.where(id_column < before)
    rows = list(db.session.scalars(statement.order_by(id_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return json_response({
        "data": [render(row) for row in rows],
        "next_cursor": _encode_cursor(rows[-1].id) if more else None,
    })


# --------------------------------------------------------------------------- stored answers


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
    content_type = PROBLEM_MEDIA_TYPE if stored.status >= 400 else "application/json"
    response = Response(stored.body, status=stored.status, mimetype=content_type)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(view):
    """For POSTs that are not sales: the first answer (errors included) is kept and replayed.

    The view's own writes must be exactly-once by themselves (a guarded UPDATE, a unique key),
    since two first calls can run at once; both then answer with whichever answer was stored.
    """

    def wrapper(**kwargs):
        key = idempotency_key()
        stored = _stored_response(key)
        if stored is not None:
            return _replay_stored(stored)
        try:
            response = view(**kwargs)
        except NeighbourlyError as error:  # the service's unit of work rolled its writes back
            response = domain_problem(error)
        with unit_of_work(db.session):
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
        # A concurrent twin may have stored its answer first: everyone answers with that one.
        stored = _stored_response(key)
        replay = _replay_stored(stored)
        if stored.body == response.get_data(as_text=True) and stored.status == response.status_code:
            return response
        return replay

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    wrapper.__wrapped__ = view
    return wrapper


# --------------------------------------------------------------------------- the OpenAPI document


class ApiModel(BaseModel):
    """Base of request and answer models in the OpenAPI document."""

    model_config = ConfigDict(extra="forbid")


class FieldError(ApiModel):
    field: str = Field(description="The request field (or header) that was not accepted.")
    detail: str = Field(description="What is wrong with it, in the caller's language.")


class Problem(ApiModel):
    """An RFC 9457 problem document. ``type`` is stable per error class; ``detail`` is translated
    (``Accept-Language``); validation problems list the fields in ``errors``."""

    type: str = Field(description="A stable identifier of the error class, e.g. /api/v1/problems/not-found.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[FieldError] | None = None


class IdempotencyHeader(BaseModel):
    """The header every POST needs."""

    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: str = Field(
        alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN.pattern, min_length=1, max_length=64,
        description=(
            "A key the POS makes up for one operation (a UUID is fine). A retry with the same key "
            "and body returns the first answer, declines included, with the same status and the "
            "header Idempotent-Replayed: true; the same key with another body answers 409."
        ),
    )


class PurchaseOut(ApiModel):
    """A recorded sale."""

    id: int
    membership_id: int
    amount: int = Field(description="The bill before points and certificates, in minor units.")
    points_used: int
    points_value: int = Field(description="What the points paid, in minor units.")
    certificate_value_used: int
    discount: int
    amount_paid: int = Field(description="What the customer paid in money.")
    points_earned: int
    earn_rate_bp: int = Field(description="Cashback rate in basis points (500 = 5 %).")
    note: str
    created_at: datetime
    refunded_at: datetime | None


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
        "created_at": iso(purchase.created_at),
        "refunded_at": iso(purchase.refunded_at),
    }


ERROR_DESCRIPTIONS = {
    401: "No API key, an unknown one or a revoked one.",
    403: "The key's scope does not allow this (a read key cannot record sales).",
    404: "No such object for the key's merchant (another merchant's ids look missing too).",
    409: "The Idempotency-Key was used with another body, or the state forbids it.",
    422: "The request was not valid; ``errors`` lists the fields. Sales can also be declined here.",
    429: "Too many calls with this key; see the RateLimit-* headers.",
    503: "The database was briefly unavailable; nothing was recorded. Retry with the same key.",
}
ALWAYS = (401, 429, 503)


class _Answers(Answers):
    def add_model(self, code: int, model: Any, replace: bool = True, description: str | None = None) -> None:
        if not replace:
            return  # spectree's own validation answer: these views validate by hand (Problem, 422)
        super().add_model(code, model, replace, description)


def api_answers(*errors: int, **success: Any) -> Answers:
    """``spectree.Response`` for an endpoint: its success models plus problem documents for
    ``errors`` and for what any call can meet (401, 429, 503)."""
    problems = {
        f"HTTP_{code}": (Problem, ERROR_DESCRIPTIONS[code]) for code in sorted({*errors, *ALWAYS})
    }
    return _Answers(**success, **problems)


API_DESCRIPTION = """\
The Neighbourly POS API: find a customer, quote a sale, record purchases and refunds, redeem
certificates. Amounts are integers in minor units of the network's currency; times are ISO 8601
in UTC. Every call carries an API key made on the business's Integrations page
(`Authorization: Bearer <key>`); a `till` key may do everything, a `read` key only reads.
Every POST needs an `Idempotency-Key` header. Errors are `application/problem+json` (RFC 9457).
Lists are newest first; pass `next_cursor` back as `cursor` for the next page.
"""

_MODEL_NAMES: dict[str, type] = {}


def model_name(model: type) -> str:
    """A model's name in the document: its class name, which must be unique across the core
    and the plugins (two models of one name would silently share one schema)."""
    name = model.__name__
    known = _MODEL_NAMES.setdefault(name, model)
    if known is not model and f"{known.__module__}.{known.__qualname__}" != f"{model.__module__}.{model.__qualname__}":
        raise RuntimeError(f"two API models are named {name}: {known.__module__} and {model.__module__}")
    return name


spec = SpecTree(
    "flask",
    naming_strategy=model_name,
    nested_naming_strategy=lambda _parent, child: child,
    title="Neighbourly POS API",
    version="1.0.0",
    description=API_DESCRIPTION,
    mode="strict",  # only the views described with spec.validate: never the HTML pages
    annotations=False,
    security_schemes=[
        SecurityScheme(
            name="apiKey",
            data=SecuritySchemeData(
                type="http", scheme="bearer",
                description="An API key made on the business's Integrations page (nbly_…).",
            ),
        )
    ],
    security={"apiKey": []},
)


def _finish(document: dict[str, Any]) -> dict[str, Any]:
    """What spectree does not write by itself: problem documents' media type, and the headers
    (rate limits on every answer, ``Idempotent-Replayed`` on answers to POSTs)."""
    rate_headers = {
        name: {"description": description, "schema": {"type": "string"}}
        for name, description in (
            ("RateLimit-Limit", "Calls allowed per window for this key."),
            ("RateLimit-Remaining", "Calls left in the current window."),
            ("RateLimit-Reset", "Seconds until the window resets."),
        )
    }
    for methods in document["paths"].values():
        for method, operation in methods.items():
            operation["operationId"] = re.sub(r"[^A-Za-z0-9_]+", "", operation["operationId"])
            for status, answer in operation["responses"].items():
                content = answer.get("content", {})
                if int(status) >= 400 and "application/json" in content:
                    answer["content"] = {PROBLEM_MEDIA_TYPE: content["application/json"]}
                if int(status) < 400:
                    answer["headers"] = dict(rate_headers)
                    if method == "post":
                        answer["headers"]["Idempotent-Replayed"] = {
                            "description": "\"true\" when this is the stored answer to a retried key.",
                            "schema": {"type": "string", "enum": ["true"]},
                        }
    _add_links(document)
    return document


# OpenAPI links: how one answer's ids feed the next call (a POS's usual paths; stateful tests
# follow them). (path, method, status) -> {name: (target path, target method, parameters)}.
LINKS = {
    ("/api/v1/customers/lookup", "get", "200"): {
        "GetMembership": ("/api/v1/memberships/{membership_id}", "get", {"membership_id": "$response.body#/id"}),
        "ListPurchases": ("/api/v1/purchases", "get", {"membership_id": "$response.body#/id"}),
    },
    ("/api/v1/purchases", "post", "201"): {
        "GetPurchase": ("/api/v1/purchases/{purchase_id}", "get", {"purchase_id": "$response.body#/id"}),
        "RefundPurchase": ("/api/v1/purchases/{purchase_id}/refund", "post", {"purchase_id": "$response.body#/id"}),
        "GetMembership": ("/api/v1/memberships/{membership_id}", "get", {"membership_id": "$response.body#/membership_id"}),
    },
    ("/api/v1/purchases/{purchase_id}/refund", "post", "200"): {
        "GetPurchase": ("/api/v1/purchases/{purchase_id}", "get", {"purchase_id": "$response.body#/id"}),
    },
    ("/api/v1/certificates/redeem", "post", "201"): {
        "GetPurchase": ("/api/v1/purchases/{purchase_id}", "get", {"purchase_id": "$response.body#/purchase/id"}),
        "RefundPurchase": ("/api/v1/purchases/{purchase_id}/refund", "post", {"purchase_id": "$response.body#/purchase/id"}),
    },
}


def _add_links(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for (path, method, status), links in LINKS.items():
        answer = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if answer is None:
            continue  # a plugin's endpoint that this app does not have
        answer["links"] = {
            name: {"operationId": paths[target][target_method]["operationId"], "parameters": parameters}
            for name, (target, target_method, parameters) in links.items()
            if target in paths
        }


def openapi_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s API (plugins' endpoints included), built once."""
    document = app.extensions.get("neighbourly_openapi")
    if document is None:
        with app.app_context():
            document = _finish(spec._generate_spec())  # per app: its plugins' routes differ
        app.extensions["neighbourly_openapi"] = document
    return document

