"""The owner's Levels page: distribution, customers close to the next level, cost, level editing."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import flash, request
from flask_babel import gettext as _

from plugins.gamification import services
from webapp.plugin_api import (
    ValidationFailed,
    db,
    merchant_plugin_blueprint,
    minor_to_decimal,
    parse_money,
    plugin_settings,
    render,
    see_other,
    staff_required,
)

bp = merchant_plugin_blueprint(
    "gamification", __name__, url_prefix="/business/<merchant_slug>/levels", template_folder="templates",
)


def _page(merchant, status: int = 200, block: str | None = None, form=None, errors=None, message=None):
    settings = plugin_settings(merchant, "gamification")
    level_rows = services.levels(db.session, merchant.id)
    currency = merchant.network.currency
    if form is None:
        form = {}
        for level in level_rows:
            index = level.position
            form[f"name_{index}"] = level.name
            form[f"threshold_{index}"] = (
                str(minor_to_decimal(level.threshold, currency)) if settings["basis"] == "spend" else str(level.threshold)
            )
            form[f"rate_{index}"] = f"{level.cashback_bp / 100:g}"
    return render(
        "gamification/index.html", block=block, status=status, merchant=merchant, settings=settings,
        overview=services.overview(db.session, merchant, settings), level_rows=level_rows,
        currency=currency, form=form, errors=errors or {}, message=message,
    )


@bp.route("/")
@staff_required("owner")
def index(merchant):
    return _page(merchant)


@bp.route("/panel")
@staff_required("owner")
def panel(merchant):
    """The dashboard panel, loaded after the dashboard page (it aggregates purchases)."""
    data = services.overview(db.session, merchant, plugin_settings(merchant, "gamification"))
    return render("gamification/_panel.html", merchant=merchant, overview=data)


def _parse_rate(text: str) -> int:
    try:
        value = Decimal(text.replace(",", ".").replace("%", "").strip())
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite():
        raise ValueError(text)
    return int((value * 100).to_integral_value())


@bp.route("/", methods=["POST"])
@staff_required("owner")
def save(merchant):
    settings = plugin_settings(merchant, "gamification")
    currency = merchant.network.currency
    count = len(services.levels(db.session, merchant.id))
    form = {key: request.form.get(key, "")[:60] for key in request.form if key != "csrf_token"}
    rows, errors = [], {}
    for index in range(count):
        name = form.get(f"name_{index}", "")
        threshold = rate = 0
        try:
            raw = form.get(f"threshold_{index}", "")
            threshold = parse_money(raw, currency) if settings["basis"] == "spend" else int(raw)
        except ValueError:
            errors[f"threshold_{index}"] = _("Enter a number.")
        try:
            rate = _parse_rate(form.get(f"rate_{index}", ""))
        except ValueError:
            errors[f"rate_{index}"] = _("Enter a percentage, like 5 or 7.5.")
        rows.append((name, threshold, rate))
    try:
        if errors:
            raise ValidationFailed(_("Check the highlighted levels."), errors=errors)
        result = services.save_levels(db.session, merchant, rows)
    except ValidationFailed as error:
        return _page(merchant, 422, block="levels_form", form=form, errors=error.details.get("errors", {}),
                     message=error.message)
    flash(" ".join([_("Levels saved."), services.backfill_in_words(result)]), "success")
    return see_other("gamification.index", merchant_slug=merchant.slug)
