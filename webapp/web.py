"""Helpers for thin views: htmx-aware rendering, safe redirects, tenant lookups, security headers."""

from __future__ import annotations

from functools import lru_cache, wraps
from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, g, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from jinja2_fragments.flask import render_block
from sqlalchemy import bindparam, select
from sqlalchemy.orm import contains_eager

from webapp.extensions import db
from webapp.models import Merchant, Network, StaffRole
from webapp.timezones import use_network_zone

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def is_fragment_request() -> bool:
    """An htmx request that wants a region, not a boosted navigation or a history restore."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(template: str, block: str | None = None, status: int = 200, **context: Any):
    """One template per screen: htmx gets the named block, everything else the whole page."""
    if block and is_fragment_request():
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def see_other(endpoint: str, **values: Any):
    """Navigate after a mutation: 303 for forms, ``HX-Location`` semantics for htmx."""
    target = url_for(endpoint, **values)
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, code=303)


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute link on the public site (``PUBLIC_URL``) for e-mails, PDFs and the receipt's QR
    code: the same in a request and in the worker, which has none. Built from the app's URL map
    directly (pushing a request context for ``url_for`` took about 0.2 ms a link)."""
    app = current_app._get_current_object()
    adapter = app.extensions.get("neighbourly_public_urls")
    if adapter is None:
        adapter = app.url_map.bind("localhost", script_name=app.config["APPLICATION_ROOT"])
        app.extensions["neighbourly_public_urls"] = adapter
    return app.config["PUBLIC_URL"].rstrip("/") + adapter.build(endpoint, values)


def safe_next(target: str | None, fallback: str = "/") -> str:
    """Only same-site paths are followed after sign-in; anything else goes to ``fallback``."""
    if not target:
        return fallback
    target = target.strip().replace("\\", "/")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    if any(ord(ch) < 32 for ch in target):
        return fallback
    return target


@lru_cache(maxsize=1)
def _staff_merchant_statement():
    """The merchant and the user's role there, with its network (currency, point value: nearly
    every staff page shows money) and its plugin rows (a row each; the navigation and the panels
    ask which plugins are on and their settings); built once, every staff page runs it."""
    from webapp.models import MerchantPlugin

    plugins = MerchantPlugin.__table__
    return (
        select(Merchant, StaffRole.role, plugins.c.plugin_name, plugins.c.settings, plugins.c.enabled)
        .join(StaffRole, StaffRole.merchant_id == Merchant.id)
        .join(Network, Network.id == Merchant.network_id)
        .outerjoin(plugins, plugins.c.merchant_id == Merchant.id)
        .options(contains_eager(Merchant.network))
        .where(Merchant.slug == bindparam("slug"), StaffRole.user_id == bindparam("user_id"))
    )


def staff_merchant(slug: str, roles: tuple[str, ...] = ("owner", "cashier")) -> Merchant:
    """The merchant ``slug`` if the signed-in user has one of ``roles`` there; 404 otherwise.

    Answering 404 (not 403) keeps other tenants' merchants indistinguishable from missing ones.
    """
    from webapp.plugins import remember_plugin_rows

    if not current_user.is_authenticated:
        abort(404)
    rows = db.session.execute(_staff_merchant_statement(), {"slug": slug, "user_id": current_user.id}).all()
    if not rows or rows[0][1] not in roles:
        abort(404)
    merchant = rows[0][0]
    g.merchant, g.staff_role = merchant, rows[0][1]
    # The plugin rows came with the merchant: no statement of their own later in the request.
    remember_plugin_rows(db.session(), merchant, [row[2:] for row in rows])
    use_network_zone(merchant.network)
    return merchant


def staff_required(*roles: str):
    """Decorator for views taking ``merchant_slug``: loads ``g.merchant`` or answers 404."""
    roles = roles or ("owner", "cashier")

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                from flask_login import login_manager  # noqa: F401

                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            merchant = staff_merchant(kwargs.pop("merchant_slug"), roles)
            return view(merchant, *args, **kwargs)

        # Navigation reads this, so a link is shown only to the roles its page lets in.
        wrapper.staff_roles = roles
        return wrapper

    return decorator


def roles_allowed(endpoint: str) -> tuple[str, ...] | None:
    """The staff roles the view at ``endpoint`` lets in (None: not a staff-only page)."""
    from flask import current_app

    return getattr(current_app.view_functions.get(endpoint), "staff_roles", None)


def landing_url(user) -> str:
    """Where a person lands after signing in: staff at their till (a cashier of one shop) or
    dashboard (its owner), staff of several shops on the list of them, an operator with no shop
    on their networks, everyone else in the wallet."""
    from webapp.services import merchants as merchant_service

    staff = merchant_service.staff_merchants(db.session, user.id)
    if len(staff) == 1:
        merchant, role = staff[0]
        if role == "owner":
            return url_for("business.dashboard", merchant_slug=merchant.slug)
        return url_for("cashier.till", merchant_slug=merchant.slug)
    if staff:
        return url_for("business.home")
    if merchant_service.operated_networks(db.session, user):
        return url_for("operator.home")
    return url_for("wallet.index")


def operated_network(slug: str) -> Network:
    """The network ``slug`` if the signed-in user operates it; 404 otherwise."""
    network = db.session.scalar(select(Network).where(Network.slug == slug))
    if (
        network is None
        or not current_user.is_authenticated
        or (network.operator_id != current_user.id and not current_user.is_platform_admin)
    ):
        abort(404)
    use_network_zone(network)
    return network


# Answers that carry a form back with its messages (invalid, conflicting, too many attempts).
FORM_ERROR_STATUSES = frozenset({409, 422, 429})
# The status a form error had, for htmx requests that receive it as a 200 (see below).
FORM_STATUS_HEADER = "Neighbourly-Status"


def soften_htmx_form_errors(response):
    """htmx requests get a re-rendered form with its messages as a 200, the real status in a header.

    Chromium logs every 4xx answer to a script's request as a console error ("Failed to load
    resource"), and nothing a page does can silence it, so a person correcting a typo at the till
    would fill the console. Browsers without JavaScript, API clients and tests that do not send
    ``HX-Request`` keep the 4xx status; htmx swaps the form either way.
    """
    if (
        response.status_code in FORM_ERROR_STATUSES
        and request.headers.get("HX-Request") == "true"
        and response.mimetype == "text/html"
    ):
        response.headers[FORM_STATUS_HEADER] = str(response.status_code)
        response.status_code = 200
        response.vary.add("HX-Request")
    return response


def set_security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Permissions-Policy", "camera=(self), geolocation=()")
    return response
