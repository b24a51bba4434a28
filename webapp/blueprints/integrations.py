"""The owner's "Integrations" page: API keys for a POS or online shop (created, listed, revoked)."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from flask_babel import gettext as _
from flask_login import current_user

from webapp.errors import NotFound, ValidationFailed
from webapp.extensions import db
from webapp.models import Merchant
from webapp.services import api_keys
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
