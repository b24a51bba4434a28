"""The owner's "Integrations" pages: API keys for a POS or online shop, and webhook endpoints."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, request
from flask_babel import gettext as _
from flask_login import current_user

from webapp.errors import NotFound, ValidationFailed
from webapp.extensions import db
from webapp.models import Merchant
from webapp.services import api_keys, webhooks
from webapp.web import render, see_other, staff_required

bp = Blueprint("integrations", __name__, url_prefix="/business")


def _page(merchant: Merchant, status: int = 200, **context):
    context.setdefault("errors", {})
    context.setdefault("form", {"scope": "till"})
    return render(
        "business/integrations.html", block="keys", status=status, merchant=merchant,
        keys=api_keys.list_keys(db.session, merchant), **context,
    )


@bp.route("/<merchant_slug>/integrations")
@staff_required("owner")
def index(merchant: Merchant):
    return _page(merchant)


@bp.route("/<merchant_slug>/integrations/keys", methods=["POST"])
@staff_required("owner")
def create_key(merchant: Merchant):
    """Create a key and show its secret on this one answer (it is never shown again)."""
    form = {"name": request.form.get("name", "")[:200], "scope": request.form.get("scope", "")}
    try:
        created = api_keys.create_key(
            db.session, merchant, name=form["name"], scope=form["scope"],
            created_by_id=current_user.id, hash_key=current_app.config["CODE_HASH_KEY"],
        )
    except ValidationFailed as error:
        return _page(merchant, 422, form=form, errors={error.details.get("field", "form"): error.message})
    response = _page(merchant, 201, created=created)
    response.headers["Cache-Control"] = "no-store"  # the secret must not linger in a cache
    return response


@bp.route("/<merchant_slug>/integrations/keys/<int:key_id>/revoke", methods=["POST"])
@staff_required("owner")
def revoke_key(merchant: Merchant, key_id: int):
    try:
        api_keys.revoke_key(db.session, merchant, key_id)
    except NotFound:
        return _page(merchant, 404, errors={"form": _("No such key here.")})
    return see_other("integrations.index", merchant_slug=merchant.slug)


# --------------------------------------------------------------------------- webhooks


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"  # a secret shown once must not linger in a cache
    return response


def _webhooks_page(merchant: Merchant, status: int = 200, **context):
    context.setdefault("errors", {})
    context.setdefault("form", {"url": "", "events": []})
    return render(
        "business/webhooks.html", status=status, merchant=merchant,
        endpoints=webhooks.list_endpoints(db.session, merchant),
        event_types=webhooks.event_types(merchant), **context,
    )


def _endpoint_page(merchant: Merchant, endpoint, status: int = 200, **context):
    labels = {item.name: item.label for item in webhooks.event_types(merchant)}
    return render(
        "business/webhook.html", status=status, merchant=merchant, endpoint=endpoint,
        event_labels=labels, deliveries=webhooks.recent_deliveries(db.session, endpoint), **context,
    )


def _endpoint_or_404(merchant: Merchant, endpoint_id: int):
    try:
        return webhooks.get_endpoint(db.session, merchant, endpoint_id)
    except NotFound:
        return None


@bp.route("/<merchant_slug>/integrations/webhooks")
@staff_required("owner")
def webhooks_index(merchant: Merchant):
    return _webhooks_page(merchant)


@bp.route("/<merchant_slug>/integrations/webhooks", methods=["POST"])
@staff_required("owner")
def create_webhook(merchant: Merchant):
    """Register an endpoint and show its signing secret on this one answer."""
    form = {"url": request.form.get("url", "")[:600], "events": request.form.getlist("events")[:50]}
    try:
        created = webhooks.create_endpoint(
            db.session, merchant, url=form["url"], events=form["events"], created_by_id=current_user.id,
        )
    except ValidationFailed as error:
        return _webhooks_page(merchant, 422, form=form, errors={error.details.get("field", "form"): error.message})
    return _no_store(_endpoint_page(merchant, created.endpoint, 201, secret=created.secret))


@bp.route("/<merchant_slug>/integrations/webhooks/<int:endpoint_id>")
@staff_required("owner")
def webhook(merchant: Merchant, endpoint_id: int):
    endpoint = _endpoint_or_404(merchant, endpoint_id)
    if endpoint is None:
        return _webhooks_page(merchant, 404, errors={"form": _("No such endpoint here.")})
    return _endpoint_page(merchant, endpoint)


@bp.route("/<merchant_slug>/integrations/webhooks/<int:endpoint_id>/rotate", methods=["POST"])
@staff_required("owner")
def rotate_webhook_secret(merchant: Merchant, endpoint_id: int):
    """A new signing secret, shown once; the old one keeps signing for a while as well."""
    try:
        rotated = webhooks.rotate_secret(db.session, merchant, endpoint_id)
    except NotFound as error:
        return _webhooks_page(merchant, 404, errors={"form": error.message})
    return _no_store(_endpoint_page(merchant, rotated.endpoint, secret=rotated.secret, rotated=True))


@bp.route("/<merchant_slug>/integrations/webhooks/<int:endpoint_id>/enable", methods=["POST"])
@staff_required("owner")
def enable_webhook(merchant: Merchant, endpoint_id: int):
    return _switch_webhook(merchant, endpoint_id, True)


@bp.route("/<merchant_slug>/integrations/webhooks/<int:endpoint_id>/disable", methods=["POST"])
@staff_required("owner")
def disable_webhook(merchant: Merchant, endpoint_id: int):
    return _switch_webhook(merchant, endpoint_id, False)


def _switch_webhook(merchant: Merchant, endpoint_id: int, enabled: bool):
    try:
        webhooks.set_enabled(db.session, merchant, endpoint_id, enabled)
    except NotFound as error:
        return _webhooks_page(merchant, 404, errors={"form": error.message})
    flash(_("Events are sent to this address again.") if enabled
          else _("No events are sent to this address until you switch it on."), "success")
    return see_other("integrations.webhook", merchant_slug=merchant.slug, endpoint_id=endpoint_id)


@bp.route("/<merchant_slug>/integrations/webhooks/<int:endpoint_id>/delete", methods=["POST"])
@staff_required("owner")
def delete_webhook(merchant: Merchant, endpoint_id: int):
    try:
        webhooks.delete_endpoint(db.session, merchant, endpoint_id)
    except NotFound as error:
        return _webhooks_page(merchant, 404, errors={"form": error.message})
    flash(_("The endpoint and its delivery log were deleted."), "success")
    return see_other("integrations.webhooks_index", merchant_slug=merchant.slug)


@bp.route(
    "/<merchant_slug>/integrations/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend",
    methods=["POST"],
)
@staff_required("owner")
def resend_webhook(merchant: Merchant, endpoint_id: int, delivery_id: int):
    """Send one delivery again now (the same ``webhook-id``, so receivers can tell a repeat)."""
    try:
        webhooks.send_again(db.session, merchant, endpoint_id, delivery_id)
    except NotFound as error:
        return _webhooks_page(merchant, 404, errors={"form": error.message})
    flash(_("The event is being sent again; its attempt appears below."), "success")
    return see_other("integrations.webhook", merchant_slug=merchant.slug, endpoint_id=endpoint_id)
