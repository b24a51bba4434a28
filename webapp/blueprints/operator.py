"""Network operator pages: network-wide figures and the merchants' applications and standing."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from webapp import outbox
from webapp.errors import Conflict, NotFound, ValidationFailed
from webapp.extensions import db
from webapp.models import Network
from webapp.models.network import MERCHANT_STATUSES
from webapp.services import analytics, merchants
from webapp.services.customers import PER_PAGE, clamp_page
from webapp.web import operated_network, render, see_other

bp = Blueprint("operator", __name__, url_prefix="/operator")

MAX_REASON_LENGTH = 1000


@bp.route("/")
@login_required
def home():
    """The networks the signed-in person operates."""
    return render("operator/home.html", networks=merchants.operated_networks(db.session, current_user))


def _status_arg(figures: analytics.NetworkFigures) -> str:
    wanted = request.values.get("status", "")
    if wanted in MERCHANT_STATUSES:
        return wanted
    # Open on the queue when something waits for a decision.
    return "pending" if figures.merchants_by_status.get("pending") else "active"


def _network_page(network: Network, status: int = 200, errors: dict | None = None,
                  reasons: dict | None = None, **extra):
    figures = analytics.network_figures(network, db.session)
    shown = _status_arg(figures)
    page = clamp_page(request.values.get("page"))
    rows = merchants.network_merchants(
        db.session, network, shown, limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE
    )
    return render(
        "operator/network.html",
        status=status,
        network=network,
        figures=figures,
        shown=shown,
        merchants=rows[:PER_PAGE],
        page=page,
        has_next=len(rows) > PER_PAGE,
        errors=errors or {},
        reasons=reasons or {},
        categories={key: _(label) for key, label in merchants.CATEGORIES.items()},
        backlog=outbox.backlog(db.session, network_id=network.id),
        **extra,
    )


@bp.route("/<network_slug>/")
@login_required
def index(network_slug: str):
    return _network_page(operated_network(network_slug))


def _back(network: Network, status: str):
    return see_other("operator.index", network_slug=network.slug, status=status)


def _reason() -> str:
    return request.form.get("reason", "").strip()[:MAX_REASON_LENGTH]


@bp.route("/<network_slug>/merchants/<int:merchant_id>/approve", methods=["POST"])
@login_required
def approve(network_slug: str, merchant_id: int):
    network = operated_network(network_slug)
    try:
        merchant = merchants.decide_application(db.session, network, current_user, merchant_id, True)
    except NotFound:
        abort(404)
    except Conflict as error:
        return _network_page(network, status=409, errors={merchant_id: error.message})
    flash(_("%(name)s is approved and now appears in the directory.", name=merchant.name), "success")
    return _back(network, "active")


def _act_with_reason(network_slug: str, merchant_id: int, act, missing_reason: str):
    """Run an operator action that needs a reason; re-render the page with the error if refused.

    Returns ``(network, merchant, None)`` on success or ``(network, None, response)``.
    """
    network = operated_network(network_slug)
    reason = _reason()
    try:
        if not reason:
            raise ValidationFailed(missing_reason)
        merchant = act(network, reason)
    except NotFound:
        abort(404)
    except (ValidationFailed, Conflict) as error:
        return network, None, _network_page(
            network, status=error.status_code, errors={merchant_id: error.message},
            reasons={merchant_id: reason},
        )
    return network, merchant, None


@bp.route("/<network_slug>/merchants/<int:merchant_id>/decline", methods=["POST"])
@login_required
def decline(network_slug: str, merchant_id: int):
    network, merchant, refused = _act_with_reason(
        network_slug, merchant_id,
        lambda network, reason: merchants.decide_application(
            db.session, network, current_user, merchant_id, False, reason=reason
        ),
        _("Say why the application is declined; the owner will see it."),
    )
    if refused is not None:
        return refused
    flash(_("%(name)s is declined; the owner sees your reason.", name=merchant.name), "success")
    return _back(network, "declined")


@bp.route("/<network_slug>/merchants/<int:merchant_id>/suspend", methods=["POST"])
@login_required
def suspend(network_slug: str, merchant_id: int):
    """Two steps: the reason, then a confirmation that says what suspending does (a form of its
    own, so it works without JavaScript; with htmx it replaces the business's row in place)."""
    if request.form.get("confirmed") != "1":
        return _confirm_suspension(network_slug, merchant_id)
    network, merchant, refused = _act_with_reason(
        network_slug, merchant_id,
        lambda network, reason: merchants.set_suspended(
            db.session, network, current_user, merchant_id, True, reason=reason
        ),
        _("Say why the business is suspended; the owner will see it."),
    )
    if refused is not None:
        return refused
    flash(
        _("%(name)s is suspended: it cannot record purchases, and its customers keep their points.",
          name=merchant.name),
        "success",
    )
    return _back(network, "suspended")


def _confirm_suspension(network_slug: str, merchant_id: int):
    network = operated_network(network_slug)
    reason = _reason()
    try:
        merchant = merchants.merchant_to_suspend(db.session, network, current_user, merchant_id)
        if not reason:
            raise ValidationFailed(_("Say why the business is suspended; the owner will see it."))
    except NotFound:
        abort(404)
    except (ValidationFailed, Conflict) as error:
        return _network_page(
            network, status=error.status_code, errors={merchant_id: error.message}, reasons={merchant_id: reason},
        )
    return render(
        "operator/confirm_suspend.html", block="confirm", network=network, merchant=merchant, reason=reason,
        shown=request.form.get("status", "active"),
    )


@bp.route("/<network_slug>/merchants/<int:merchant_id>/reinstate", methods=["POST"])
@login_required
def reinstate(network_slug: str, merchant_id: int):
    network = operated_network(network_slug)
    try:
        merchant = merchants.set_suspended(db.session, network, current_user, merchant_id, False)
    except NotFound:
        abort(404)
    except Conflict as error:
        return _network_page(network, status=409, errors={merchant_id: error.message})
    flash(_("%(name)s is active again.", name=merchant.name), "success")
    return _back(network, "active")


@bp.route("/<network_slug>/timezone", methods=["POST"])
@login_required
def timezone(network_slug: str):
    """The operator sets the street's time zone; an unknown name is refused at the field."""
    network = operated_network(network_slug)
    wanted = request.form.get("timezone", "")[:80]
    try:
        merchants.set_network_timezone(db.session, network, wanted)
    except ValidationFailed as error:
        return _network_page(network, status=422, errors={"timezone": error.message}, timezone_text=wanted)
    flash(_("Times are now shown in %(zone)s.", zone=network.timezone), "success")
    return see_other("operator.index", network_slug=network.slug)


@bp.route("/<network_slug>/language", methods=["POST"])
@login_required
def language(network_slug: str):
    """The operator sets the network's default language, chosen from the site's languages."""
    network = operated_network(network_slug)
    wanted = request.form.get("locale", "")[:10]
    try:
        merchants.set_network_locale(db.session, network, wanted)
    except ValidationFailed as error:
        return _network_page(network, status=422, errors={"locale": error.message})
    flash(_("%(language)s is now the network's default language.",
            language=current_app.config["LANGUAGES"][network.default_locale]), "success")
    return see_other("operator.index", network_slug=network.slug)


@bp.route("/<network_slug>/country", methods=["POST"])
@login_required
def country(network_slug: str):
    """The operator sets the country phone numbers default to; an unknown code is refused at the field."""
    network = operated_network(network_slug)
    wanted = request.form.get("country", "")[:10]
    try:
        merchants.set_network_country(db.session, network, wanted)
    except ValidationFailed as error:
        return _network_page(network, status=422, errors={"country": error.message}, country_text=wanted)
    flash(_("Phone numbers without a country code are now read as numbers of %(country)s.",
            country=network.country), "success")
    return see_other("operator.index", network_slug=network.slug)
