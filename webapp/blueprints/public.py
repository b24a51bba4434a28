"""Public pages: the network directory, merchant e-cards with their join QR, and joining."""

from __future__ import annotations

from dataclasses import replace

from babel.dates import get_day_names
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from jinja2_fragments.flask import render_block
from markupsafe import Markup

from webapp.errors import NotFound, ValidationFailed
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.services import directory, memberships, price_items, street, street_cache
from webapp.services import hours as hours_service
from webapp.services.merchants import CATEGORIES
from webapp.templating import qr_svg
from webapp.timezones import use_network_zone
from webapp.web import public_url, render, see_other

bp = Blueprint("public", __name__)

# Translatable names of the merchant categories (the keys are stored on merchants).
CATEGORY_LABELS = {
    "beauty": _l("Beauty salon"),
    "restaurant": _l("Restaurant"),
    "cafe": _l("Coffee shop"),
    "bakery": _l("Bakery"),
    "car_wash": _l("Car wash"),
    "cinema": _l("Cinema"),
    "flowers": _l("Flower shop"),
    "grocery": _l("Grocery"),
    "fitness": _l("Fitness"),
    "pharmacy": _l("Pharmacy"),
    "services": _l("Services"),
    "other": _l("Other"),
}
JOIN_SOURCES = ("qr", "link", "code")
CONSENT_REQUIRED = _l("To get a loyalty card you need to agree to the processing of your data.")


@bp.app_template_global()
def category_label(key: str) -> str:
    """The category's name in the reader's language."""
    label = CATEGORY_LABELS.get(key)
    return str(label) if label is not None else CATEGORIES.get(key, key)


def join_url(merchant, via: str | None = None, external: bool = True) -> str:
    """The join link of a merchant; absolute (from ``PUBLIC_URL``) for QR codes and sharing."""
    if not external:
        return url_for("public.join", code=merchant.join_code, via=via)
    return public_url("public.join", code=merchant.join_code, via=via)


def _page_number() -> int:
    return max(1, request.args.get("page", default=1, type=int) or 1)


def _render_directory(network):
    listing = directory.directory_page(
        db.session,
        network,
        category=request.args.get("category") or None,
        query=request.args.get("q", ""),
        page=_page_number(),
    )
    return render(
        "public/directory.html", block="results", listing=listing, network=network,
        base_url=url_for("public.directory", network_slug=network.slug),
    )


@bp.route("/")
def index():
    networks = directory.list_networks(db.session)
    if len(networks) == 1:
        return _render_directory(networks[0].network)
    return render("public/networks.html", networks=networks)


@bp.route("/n/<network_slug>/", endpoint="directory")
def directory_view(network_slug: str):
    network = directory.network_by_slug(db.session, network_slug)
    if network is None:
        abort(404)
    return _render_directory(network)


@bp.route("/n/<network_slug>/street", endpoint="street")
def street_view(network_slug: str):
    """Search every merchant's price list: item, price, cashback, points, alternatives."""
    # Read before any statement of the request, so nothing cached below predates a change that
    # this number does not yet count (webapp.services.street_cache).
    generation = street_cache.generation()
    network = directory.network_by_slug(db.session, network_slug)
    if network is None:
        abort(404)
    use_network_zone(network)
    category = request.args.get("category", "")
    if len(category) > price_items.MAX_CATEGORY or len(request.args.get("q", "")) > 1000:
        abort(400)  # a hand-made URL; the form never sends these
    base_url = url_for("public.street", network_slug=network.slug)
    query, open_now, page = request.args.get("q", ""), request.args.get("open") == "1", _page_number()
    now = utcnow()
    # Everything the answer depends on (webapp.services.street_cache).
    key = (
        generation, network.id, network.slug, network.currency,
        network.point_value_minor, network.timezone, network.default_locale,
        street.clean_query(query), category.strip()[: price_items.MAX_CATEGORY], open_now,
        min(max(1, page), street.MAX_PAGE), str(get_locale()), int(now.timestamp() // 60),
    )
    cache = _street_cache()
    cached = cache.get(key)
    if cached is None:
        result = street.search(
            db.session, network, query=query, category=category, open_now=open_now, page=page,
            now=now,
        )
        results_html = Markup(render_block(  # noqa: S704 - our own template's output
            "public/street.html", "results", result=result, network=network, base_url=base_url
        ))
        # A repeated search (another visitor, the same words typed again) skips the search and
        # the rendering of its results: one statement (the network) instead of three.
        cached = (replace(result, network=None), results_html)
        cache.put(key, cached)
    result, results_html = cached
    return render(
        "public/street.html", block="results", result=result, network=network,
        base_url=base_url, results_html=results_html,
    )


def _street_cache() -> street_cache.ResultCache:
    found = current_app.extensions.get("street_cache")
    if found is None:
        found = current_app.extensions["street_cache"] = street_cache.ResultCache(
            current_app.config.get("STREET_CACHE_SIZE", 256)
        )
    return found


def _active_merchant(slug: str):
    merchant = directory.active_merchant_by_slug(db.session, slug)
    if merchant is None:
        abort(404)
    use_network_zone(merchant.network)
    return merchant


@bp.route("/m/<slug>")
def merchant(slug: str):
    merchant = _active_merchant(slug)
    membership = None
    if current_user.is_authenticated:
        membership = memberships.find_membership(db.session, current_user.id, merchant.id)
        if membership is not None and membership.left_at is not None:
            membership = None
    weekly = hours_service.hours_of(merchant)
    names = get_day_names("abbreviated", locale=get_locale() or "en")
    return render(
        "public/merchant.html",
        merchant=merchant,
        membership=membership,
        weekly_hours=[
            (names[day], weekly.get(day) and hours_service.clock(weekly[day][0]) + "–"
             + hours_service.clock(weekly[day][1]))
            for day in range(7)
        ] if weekly else [],
        open_now=hours_service.is_open(weekly, utcnow(), merchant.network.timezone) if weekly else None,
        join_link=join_url(merchant),
        qr_link=join_url(merchant, via="qr"),
    )


@bp.route("/m/<slug>/qr.svg")
def merchant_qr(slug: str):
    """The join QR code as a file, for posters and table stands."""
    merchant = _active_merchant(slug)
    response = make_response(str(qr_svg(join_url(merchant, via="qr"), scale=12)))
    response.mimetype = "image/svg+xml"
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f'attachment; filename="join-{merchant.slug}.svg"'
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.route("/photos/<filename>")
def photo(filename: str):
    """Merchant photos from the upload folder; only names recorded in the database are served."""
    if directory.photo_by_filename(db.session, filename) is None:
        abort(404)
    return send_from_directory(current_app.config["UPLOAD_FOLDER"], filename, max_age=86400)


@bp.route("/join")
def join_form():
    """Type the short code from a poster; the code is looked up before anything else happens."""
    typed = request.args.get("code")
    error = None
    if typed is not None:
        merchant = directory.active_merchant_by_join_code(db.session, typed)
        if merchant is not None:
            return redirect(url_for("public.join", code=merchant.join_code, via="code"), code=303)
        if directory.normalize_join_code(typed):
            error = _("No business in the network uses the code %(code)s. Check it and try again.",
                      code=directory.normalize_join_code(typed))
        else:
            error = _("Enter the code printed on the poster or shown by the cashier.")
    return render(
        "public/join_code.html", block="form", status=422 if error else 200,
        error=error, typed=typed or "",
    )


@bp.route("/join/<code>", methods=["GET", "POST"])
def join(code: str):
    merchant = directory.active_merchant_by_join_code(db.session, code)
    if merchant is None:
        return render("public/join_unknown.html", status=404, code=directory.normalize_join_code(code))
    via = request.args.get("via")
    via = via if via in JOIN_SOURCES else "link"
    referral_code = (request.args.get("ref") or "").strip()[:80] or None
    # Where sign-in and registration come back to: the same page with the same source and referral.
    here = url_for(
        "public.join", code=merchant.join_code, via=None if via == "link" else via, ref=referral_code
    )
    if not current_user.is_authenticated:
        if request.method == "POST":
            return redirect(url_for("auth.login", next=here), code=303)
        return render("public/join.html", merchant=merchant, here=here, error=None, form={})

    user = current_user._get_current_object()
    existing = memberships.find_membership(db.session, user.id, merchant.id)
    if existing is not None and existing.left_at is None:
        flash(_("You already have a card at %(name)s.", name=merchant.name), "info")
        return see_other("wallet.index")

    error = None
    if request.method == "POST":
        try:
            memberships.join_merchant(
                db.session,
                user,
                merchant,
                consent_given=request.form.get("consent") == "yes",
                marketing_consent=request.form.get("marketing") == "yes",
                text_version=current_app.config["CONSENT_TEXT_VERSION"],
                source=via,
                referral_code=referral_code,
            )
        except ValidationFailed:
            error = str(CONSENT_REQUIRED)
        except NotFound:
            abort(404)
        else:
            if existing is not None:
                flash(_("Welcome back to %(name)s! Your card is open again.", name=merchant.name), "success")
            else:
                flash(_("Welcome to %(name)s!", name=merchant.name), "success")
            return see_other("wallet.index")
    return render(
        "public/join.html", block="form", status=422 if error else 200,
        merchant=merchant, here=here, error=error, form=request.form,
        consent_text=memberships.consent_text(merchant),
        marketing_text=memberships.consent_text(merchant, memberships.MARKETING),
    )
