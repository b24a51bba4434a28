"""Owner pages (offers, the segment builder with its live size, a report) and the customer's offer page."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, g, request
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required

from plugins.offers import services
from webapp.plugin_api import (
    Conflict,
    NeighbourlyError,
    db,
    find_membership,
    merchant_plugin_blueprint,
    render,
    see_other,
    staff_required,
    use_network_zone,
)

bp = merchant_plugin_blueprint("offers", __name__, template_folder="templates")

FORM_FIELDS = (
    "form_key",
    *services.CRITERIA_FIELDS,
    "title",
    "message",
    "kind",
    "points",
    "reward_key",
    "control_percent",
    "confirm",
)


def _form() -> dict[str, str]:
    source = request.form if request.method == "POST" else request.args
    form = {name: source.get(name, "")[:3000] for name in FORM_FIELDS}
    extra = [name for name in source if name.startswith(services.EXTRA_PREFIX)][:20]
    form.update({name[:100]: source.get(name, "")[:200] for name in extra})
    return form


def _criteria(merchant, form):
    conditions = services.segment_conditions(merchant, db.session)
    items = services.item_choices(merchant, db.session)
    return services.parse_criteria(form, merchant.network.currency, conditions, items)


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


# --------------------------------------------------------------------------- owner


@bp.route("/business/<merchant_slug>/offers/")
@staff_required("owner")
def index(merchant):
    return render(
        "offers/index.html",
        merchant=merchant,
        offers=services.merchant_offers(db.session, merchant),
    )


def _builder(merchant, form, errors, status=200, size=None, notice=None, confirm=False, block=None):
    options = services.reward_options(merchant, db.session)
    return render(
        "offers/new.html",
        block=block,
        status=status,
        merchant=merchant,
        form=form,
        errors=errors,
        size=size,
        notice=notice,
        confirm=confirm,
        options=options,
        currency=merchant.network.currency,
        default_control=services.DEFAULT_CONTROL_PERCENT,
        conditions=services.segment_conditions(merchant, db.session),
        items=services.item_choices(merchant, db.session),
        extra_prefix=services.EXTRA_PREFIX,
        months=get_locale().months["stand-alone"]["wide"],
    )


@bp.route("/business/<merchant_slug>/offers/new", methods=["GET", "POST"])
@staff_required("owner")
def create(merchant):
    form = _form()
    if request.method == "GET":
        form["control_percent"] = str(services.DEFAULT_CONTROL_PERCENT)
        form["form_key"] = uuid.uuid4().hex
        form["kind"] = "points"
        criteria, _errors = _criteria(merchant, form)
        return _builder(
            merchant, form, {}, size=services.segment_size(db.session, merchant, criteria)
        )
    criteria, errors = _criteria(merchant, form)
    size = None if errors else services.segment_size(db.session, merchant, criteria)
    if request.form.get("action") == "count":  # without JavaScript: count, then decide
        return _builder(merchant, form, errors, status=422 if errors else 200, size=size)
    options = services.reward_options(merchant, db.session)
    data, offer_errors = services.parse_offer(form, options)
    errors.update(offer_errors)
    if errors:
        return _builder(merchant, form, errors, status=422, size=size)
    try:
        offer = services.send_offer(
            db.session,
            merchant,
            criteria,
            data,
            current_user.id,
            _secret(),
            confirm=form.get("confirm") == "yes",
            options=options,
            form_key=form.get("form_key"),
        )
    except services.NeedsConfirmation as error:
        return _builder(
            merchant, form, {}, status=409, size=size, notice=error.message, confirm=True
        )
    except NeighbourlyError as error:
        return _builder(
            merchant, form, {}, status=error.status_code, size=size, notice=error.message
        )
    flash(
        ngettext("Sent to %(num)s customer.", "Sent to %(num)s customers.", offer.recipients),
        "success",
    )
    return see_other("offers.offer_report", merchant_slug=merchant.slug, offer_id=offer.id)


@bp.route("/business/<merchant_slug>/offers/size")
@staff_required("owner")
def size(merchant):
    """The segment's size for the form as it is now (htmx, as the owner types)."""
    form = _form()
    criteria, errors = _criteria(merchant, form)
    count = None if errors else services.segment_size(db.session, merchant, criteria)
    # htmx gets the size alone; a plain request (a bookmark) gets the whole form, filled in.
    return _builder(merchant, form, errors, size=count, block="size")


@bp.route("/business/<merchant_slug>/offers/<int:offer_id>")
@staff_required("owner")
def offer_report(merchant, offer_id: int):
    offer = services.get_offer(db.session, merchant, offer_id)
    return render(
        "offers/report.html",
        merchant=merchant,
        offer=offer,
        report=services.report(db.session, merchant, offer),
        criteria=services.criteria_from_json(offer.criteria),
        currency=merchant.network.currency,
    )


# --------------------------------------------------------------------------- customers


def _member_or_404(merchant_slug: str):
    merchant = g.plugin_merchant
    if merchant.status != "active":
        abort(404)
    use_network_zone(merchant.network)
    membership = find_membership(db.session, current_user.id, merchant.id)
    if membership is None or membership.left_at is not None:
        abort(404)
    return merchant, membership


@bp.route("/m/<merchant_slug>/offers/<int:offer_id>")
@login_required
def offer(merchant_slug: str, offer_id: int):
    merchant, membership = _member_or_404(merchant_slug)
    found, claimed = services.open_offer(db.session, merchant, offer_id, membership)
    return render(
        "offers/offer.html",
        merchant=merchant,
        membership=membership,
        offer=found,
        claimed=claimed,
        is_open=services.is_open(found),
        error=None,
    )


@bp.route("/m/<merchant_slug>/offers/<int:offer_id>/claim", methods=["POST"])
@login_required
def claim(merchant_slug: str, offer_id: int):
    merchant, membership = _member_or_404(merchant_slug)
    try:
        _claim, made = services.claim(db.session, merchant, offer_id, membership)
    except Conflict as error:
        found, claimed = services.open_offer(db.session, merchant, offer_id, membership)
        return render(
            "offers/offer.html",
            status=error.status_code,
            merchant=merchant,
            membership=membership,
            offer=found,
            claimed=claimed,
            is_open=services.is_open(found),
            error=error.message,
        )
    if made:
        flash(_("It is yours. Thank you!"), "success")
    return see_other("offers.offer", merchant_slug=merchant.slug, offer_id=offer_id)
