"""Plugin marketplace: owners switch plugins on and off in place and edit their settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, flash, request
from flask_babel import gettext as _
from flask_login import current_user

from webapp.errors import Conflict, ValidationFailed
from webapp.extensions import db
from webapp.formatting import minor_to_decimal, parse_money
from webapp.models import Merchant
from webapp.plugins import PluginMeta, SettingSpec, is_enabled, plugin_settings, registry
from webapp.services import merchants as merchant_service
from webapp.web import is_fragment_request, render, see_other, staff_required

bp = Blueprint("marketplace", __name__, url_prefix="/business")


@dataclass
class SettingField:
    """One generated input: the declaration, what to show in it, and its error."""

    spec: SettingSpec
    value: str = ""
    checked: bool = False
    error: str = ""


@dataclass
class PluginCard:
    """Everything one marketplace card shows for one merchant."""

    meta: PluginMeta
    enabled: bool
    requires: list[tuple[str, bool]]  # (title, switched on here)
    fields: list[SettingField] = field(default_factory=list)
    error: str = ""
    notice: str = ""
    settings_open: bool = False


def _shown(spec: SettingSpec, value: Any, currency: str) -> str:
    if value is None:
        return ""
    if spec.type == "money":
        return str(minor_to_decimal(int(value), currency))
    if spec.type == "basis_points":
        return f"{int(value) / 100:g}"
    return str(value)


def _card(
    merchant: Merchant, meta: PluginMeta, *, error: str = "", notice: str = "",
    submitted: dict[str, str] | None = None, field_errors: dict[str, str] | None = None,
) -> PluginCard:
    reg = registry()
    currency = merchant.network.currency
    saved = plugin_settings(merchant, meta.name) if meta.settings else {}
    fields = []
    for spec in meta.settings:
        if submitted is not None:  # re-show what the owner typed, not what is stored
            raw = submitted.get(spec.name)
            fields.append(SettingField(spec, value=raw or "", checked=raw is not None))
        else:
            value = saved.get(spec.name)
            fields.append(SettingField(spec, value=_shown(spec, value, currency), checked=value is True))
        fields[-1].error = (field_errors or {}).get(spec.name, "")
    requires = [
        (str(reg.metas[name].title) if name in reg.metas else name, is_enabled(merchant, name))
        for name in meta.requires
    ]
    return PluginCard(
        meta=meta, enabled=is_enabled(merchant, meta.name), requires=requires, fields=fields,
        error=error, notice=notice, settings_open=bool(field_errors) or submitted is not None,
    )


def _respond(merchant: Merchant, card: PluginCard, status: int):
    """htmx: the card alone (plus the nav, out of band); otherwise the whole page."""
    if is_fragment_request():
        return render(
            "marketplace/index.html", block="card", status=status, merchant=merchant, card=card,
            oob_nav=True,
        )
    cards = [card if meta.name == card.meta.name else _card(merchant, meta)
             for meta in registry().installed()]
    return render("marketplace/index.html", status=status, merchant=merchant, cards=cards)


def _plugin(name: str) -> PluginMeta:
    meta = registry().meta(name)
    if meta is None:
        abort(404)
    return meta


@bp.route("/<merchant_slug>/marketplace")
@staff_required("owner")
def index(merchant):
    cards = [_card(merchant, meta) for meta in registry().installed()]
    return render("marketplace/index.html", merchant=merchant, cards=cards)


@bp.route("/<merchant_slug>/marketplace/<plugin_name>/toggle", methods=["POST"])
@staff_required("owner")
def toggle(merchant, plugin_name: str):
    meta = _plugin(plugin_name)
    # The form says which state it wants, so a double click cannot flip the switch back.
    enabled = request.form.get("enabled") == "1"
    notes: list[str] = []
    try:
        merchant_service.set_plugin_enabled(
            db.session, registry(), merchant, meta.name, enabled, current_user, notes=notes
        )
    except (Conflict, ValidationFailed) as error:  # requires unmet, or a plugin's callback refused
        return _respond(merchant, _card(merchant, meta, error=error.message), error.status_code)
    if enabled:
        message = " ".join([_("%(plugin)s is switched on.", plugin=meta.title), *notes])
    else:
        message = _("%(plugin)s is switched off. Its data is kept.", plugin=meta.title)
    if is_fragment_request():
        response = _respond(merchant, _card(merchant, meta, notice=message), 200)
        response.headers["HX-Trigger"] = "neighbourly:plugins-changed"
        return response
    flash(message)
    return see_other("marketplace.index", merchant_slug=merchant.slug, _anchor=f"plugin-{meta.name}")


@bp.route("/<merchant_slug>/marketplace/<plugin_name>/settings", methods=["POST"])
@staff_required("owner")
def settings(merchant, plugin_name: str):
    meta = _plugin(plugin_name)
    submitted = {spec.name: request.form[spec.name] for spec in meta.settings if spec.name in request.form}
    form = dict(submitted)
    try:
        for spec in meta.settings:
            if spec.type == "money":  # owners type money as they write it; the plugin stores minor units
                try:
                    form[spec.name] = str(parse_money(form.get(spec.name, ""), merchant.network.currency))
                except ValueError as error:
                    raise ValidationFailed(f"{spec.label}: {error}", field=spec.name) from None
        merchant_service.save_plugin_settings(
            db.session, registry(), merchant, meta.name, form, current_user
        )
    except ValidationFailed as error:
        field_name = error.details.get("field")
        card = _card(
            merchant, meta, error=error.message, submitted=submitted,
            field_errors={str(field_name): error.message} if field_name else {},
        )
        return _respond(merchant, card, 422)
    message = _("Settings of %(plugin)s are saved.", plugin=meta.title)
    if is_fragment_request():
        return _respond(merchant, _card(merchant, meta, notice=message), 200)
    flash(message)
    return see_other("marketplace.index", merchant_slug=merchant.slug, _anchor=f"plugin-{meta.name}")
