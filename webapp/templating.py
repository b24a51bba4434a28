"""Template globals and filters: money, points, dates, QR codes, plugin slots and navigation."""

from __future__ import annotations

import io

import segno
from flask import Flask, current_app, g, url_for
from flask_babel import format_date, format_datetime, get_locale
from flask_login import current_user
from markupsafe import Markup, escape

from webapp import formatting
from webapp.plugins import hooks_for, sorted_by_order

SLOTS = ("wallet_card", "merchant_page", "customer_portrait", "receipt", "checkout")


def qr_svg(data: str, scale: int = 4, title: str = "") -> Markup:
    """An inline SVG QR code; segno escapes nothing of ours, the data is only encoded as modules."""
    buffer = io.BytesIO()
    segno.make(data, error="m").save(
        buffer, kind="svg", scale=scale, xmldecl=False, svgns=True, nl=False,
        title=title or None, svgclass="qr", lineclass=None, border=2, omitsize=True,
    )
    return Markup(buffer.getvalue().decode())  # noqa: S704 - segno output, the data is only encoded


def slot(name: str, merchant, **kwargs) -> Markup:
    """Join the HTML that the core and a merchant's enabled plugins contribute to a named slot."""
    if name not in SLOTS:
        raise KeyError(f"unknown template slot {name!r}")
    hook = getattr(hooks_for(merchant), f"neighbourly_tpl_{name}")
    parts = [part for part in hook(merchant=merchant, **kwargs) if part]
    # A plugin that returns a plain string gets it escaped: only Markup passes through as HTML.
    return Markup("").join(escape(part) for part in reversed(parts))


def staff_nav(merchant) -> list:
    """Navigation for a merchant's staff pages; owner-only items hidden from cashiers."""
    items = sorted_by_order(
        hooks_for(merchant).neighbourly_collect_nav_items(merchant=merchant, user=current_user)
    )
    role = getattr(g, "staff_role", None)
    visible = [item for item in items if role == "owner" or not item.owner_only]
    return [(item, url_for(item.endpoint, **item.url_params)) for item in visible]


def register(app: Flask) -> None:
    app.jinja_env.globals.update(
        qr_svg=qr_svg,
        slot=slot,
        staff_nav=staff_nav,
        get_locale=get_locale,
        languages=lambda: current_app.config["LANGUAGES"],
    )
    app.jinja_env.filters.update(
        money=lambda amount, currency: formatting.money(amount, currency),
        points=formatting.points,
        ledger_reason=formatting.ledger_reason,
        date=lambda value, fmt="medium": format_date(value, fmt) if value else "",
        datetime=lambda value, fmt="medium": format_datetime(value, fmt) if value else "",
        percent_bp=formatting.percent_bp,
    )
    app.jinja_env.add_extension("jinja2.ext.do")
