"""Template globals and filters: money, points, dates, QR codes, plugin slots and navigation."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache

import segno
from babel.numbers import get_currency_precision, get_decimal_symbol, get_group_symbol
from flask import Flask, current_app, g, url_for
from flask_babel import format_date, format_datetime, get_locale, get_translations, to_user_timezone
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup, escape

from webapp import formatting, ledger_reasons
from webapp.plugins import hooks_for, sorted_by_order

SLOTS = ("wallet_card", "merchant_page", "customer_portrait", "receipt", "checkout")
# Slots of a whole network's pages: every installed plugin is asked (each shows only its merchants').
NETWORK_SLOTS = ("directory",)


def qr_svg(data: str, scale: int = 4, title: str = "", once: bool = False) -> Markup:
    """An inline SVG QR code; segno escapes nothing of ours, the data is only encoded as modules.

    ``once``: for data shown once (a receipt's link, new on every sale), encoded with a fixed
    mask instead of the best of eight; any mask scans, and the cache would never hit.
    """
    return Markup(_qr_svg(str(data), int(scale), str(title or ""), 0 if once else None))  # noqa: S704 - segno output


@lru_cache(maxsize=512)
def _qr_svg(data: str, scale: int, title: str, mask: int | None = None) -> str:
    # Encoding picks the best of eight masks (a few ms); the same card or link gives the same SVG,
    # so a wallet shown again does not encode its codes again. A fixed mask saves about two
    # thirds of the encoding (5.6 -> 1.7 ms here) where the code is shown once.
    buffer = io.BytesIO()
    segno.make(data, error="m", mask=mask).save(
        buffer, kind="svg", scale=scale, xmldecl=False, svgns=True, nl=False,
        title=title or None, svgclass="qr", lineclass=None, border=2, omitsize=True,
    )
    return buffer.getvalue().decode()


# --------------------------------------------------------------------------- per-request locale
#
# Flask-Babel resolves the domain, the locale and the catalogue again on every gettext call and
# every formatter looks the locale up again: a page with a hundred labels and figures spent
# milliseconds there. The templates' helpers below look them up once per request (and again
# whenever the locale object changes: ``force_locale``, ``refresh``).


def _babel_state() -> tuple[object, str, object] | None:
    """(locale, its identifier, translations) of the current request, or None outside one."""
    try:
        namespace = g._flask_babel  # Flask-Babel's per-context namespace
    except (AttributeError, RuntimeError):
        return None
    locale = getattr(namespace, "babel_locale", None)
    cached = getattr(namespace, "neighbourly_state", None)
    if cached is not None and locale is not None and cached[0] is locale:
        return cached
    translations = get_translations()
    locale = get_locale()
    state = (locale, str(locale or "en"), translations)
    namespace.neighbourly_state = state
    return state


def _translations():
    state = _babel_state()
    return state[2] if state is not None else get_translations()


def _locale_id() -> str:
    state = _babel_state()
    return state[1] if state is not None else str(get_locale() or "en")


def _gettext(string: str) -> str:
    return _translations().ugettext(string)


def gettext(string: str, **variables) -> str:
    """Flask-Babel's ``gettext`` (the same text) through the catalogue looked up once a request,
    for the core's Python-side labels: navigation, sort orders, panel titles (7-9 µs a call
    through Flask-Babel's domain and context look-ups, about 1 µs here)."""
    text = _translations().ugettext(string)
    return text % variables if variables else text


def _ngettext(singular: str, plural: str, number: int) -> str:
    return _translations().ungettext(singular, plural, number)


def _pgettext(context: str, string: str) -> str:
    return _translations().upgettext(context, string)


def _npgettext(context: str, singular: str, plural: str, number: int) -> str:
    return _translations().unpgettext(context, singular, plural, number)


_TEXTS = "_neighbourly_template_texts"


@pass_context
def _template_gettext(context, string: str, **variables) -> str:
    """Jinja's newstyle ``gettext``/``_`` (the same text: escaped when autoescaping, always a
    format string); a label without variables is kept per catalogue, which saves Jinja's
    wrapper and the ``Markup`` formatting (about 5 µs a label, 50-80 labels a page)."""
    translations = _translations()
    autoescape = context.eval_ctx.autoescape
    if variables:
        text = translations.ugettext(string)
        return (Markup(text) if autoescape else text) % variables  # noqa: S704 - a catalogue text, as Jinja does
    texts = translations.__dict__.get(_TEXTS)
    if texts is None:
        texts = translations.__dict__[_TEXTS] = {}
    key = (string, autoescape)
    text = texts.get(key)
    if text is None:
        text = translations.ugettext(string)
        text = texts[key] = (Markup(text) if autoescape else text) % {}  # noqa: S704 - a catalogue text, as Jinja does
    return text


# --------------------------------------------------------------------------- numbers and dates
#
# The same text as ``formatting.points``/``formatting.money`` (Babel), built from the locale's
# symbols once per locale and currency. A fast formatter is used only after it gave Babel's exact
# text for a spread of amounts; a locale it does not fit keeps Babel.

_SAMPLES = (0, 1, 7, 12, 99, 100, 999, 1000, 1001, 9999, 10_000, 12_345, 99_999, 100_000,
            123_456, 999_999, 1_000_000, 1_234_567, 12_345_678, 123_456_789, 10**12 + 7,
            987_654_321_012_345)


def _grouped(number: int, group: str) -> str:
    return f"{number:,}".replace(",", group) if group != "," else f"{number:,}"


def _checked(fast: Callable[[int], str], slow: Callable[[int], str]) -> Callable[[int], str] | None:
    for number in _SAMPLES:
        for value in (number, -number):
            if fast(value) != slow(value):
                return None
    return fast


@lru_cache(maxsize=64)
def _points_formatter(locale: str) -> Callable[[int], str] | None:
    group = get_group_symbol(locale)
    plain = formatting.points(10**9 + 1, locale=locale)
    negative = formatting.points(-(10**9 + 1), locale=locale)
    number = _grouped(10**9 + 1, group)
    if plain != number or number not in negative:
        return None
    before, after = negative.split(number, 1)

    def fast(value: int) -> str:
        return _grouped(value, group) if value >= 0 else before + _grouped(-value, group) + after

    return _checked(fast, lambda value: formatting.points(value, locale=locale))


@lru_cache(maxsize=256)
def _money_formatter(locale: str, currency: str) -> Callable[[int], str] | None:
    digits = get_currency_precision(currency)
    group, decimal = get_group_symbol(locale), get_decimal_symbol(locale)
    scale = 10**digits
    whole_shown = currency in formatting.WHOLE_UNITS_SHOWN

    def number_text(value: int) -> str:
        whole = _grouped(value // scale, group)
        if not digits or (whole_shown and value % scale == 0):
            return whole
        return f"{whole}{decimal}{value % scale:0{digits}d}"

    probe = 123_456_789_012
    shapes = []
    for sign in (1, -1):
        text, number = formatting.money(sign * probe, currency, locale=locale), number_text(probe)
        if text.count(number) != 1:
            return None
        shapes.append(text.split(number, 1))
    (before, after), (minus_before, minus_after) = shapes

    def fast(value: int) -> str:
        if value >= 0:
            return before + number_text(value) + after
        return minus_before + number_text(-value) + minus_after

    return _checked(fast, lambda value: formatting.money(value, currency, locale=locale))


def points_filter(value) -> str:
    locale = _locale_id()
    if type(value) is int or value is None:
        fast = _points_formatter(locale)
        if fast is not None:
            return fast(value or 0)
    return formatting.points(value, locale=locale)


def money_filter(amount, currency: str) -> str:
    if amount is None:
        return ""
    locale = _locale_id()
    if type(amount) is int:
        fast = _money_formatter(locale, currency)
        if fast is not None:
            return fast(amount)
    return formatting.money(amount, currency, locale=locale)


@lru_cache(maxsize=4096)
def _day_text(day: date, fmt: str, locale: str) -> str:
    return format_date(day, fmt, rebase=False)  # the current locale, which ``locale`` names


def _in_user_zone(moment: datetime) -> datetime:
    """``to_user_timezone``, reading the zone Flask-Babel keeps for the request directly (its own
    look-up goes through the context on every call: a list's rows each show two dates)."""
    try:
        zone = g._flask_babel.babel_tzinfo
    except (AttributeError, RuntimeError):
        return to_user_timezone(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return zone.normalize(moment.astimezone(zone))


def date_filter(value, fmt: str = "medium") -> str:
    """``format_date`` (in the user's time zone); a day's text is kept per format and locale."""
    if not value:
        return ""
    if isinstance(value, datetime):
        value = _in_user_zone(value).date()
    elif not isinstance(value, date):
        return format_date(value, fmt)
    return _day_text(value, fmt, _locale_id())


@lru_cache(maxsize=4096)
def _moment_text(moment: datetime, fmt: str, locale: str) -> str:
    return format_datetime(moment, fmt, rebase=False)  # already in the user's time zone


def datetime_filter(value, fmt: str = "medium") -> str:
    """``format_datetime`` in the user's time zone; the text of a moment is kept (ledger entries
    and purchases are shown again on every visit to the same page)."""
    if not value:
        return ""
    if not isinstance(value, datetime):
        return format_datetime(value, fmt)
    return _moment_text(_in_user_zone(value), fmt, _locale_id())


@lru_cache(maxsize=4096)
def _percent_bp_text(basis_points: int, locale: str) -> str:
    return formatting.percent_bp(basis_points, locale=locale)


def percent_bp_filter(basis_points) -> str:
    """``formatting.percent_bp`` in the reader's locale; a rate's text is kept per locale (a street
    search or a customer list shows the same few rates on every row)."""
    if type(basis_points) is not int:
        return formatting.percent_bp(basis_points)
    return _percent_bp_text(basis_points, _locale_id())


def ledger_reason_filter(entry) -> str:
    """Why a ledger entry moved points, in the reader's language, from its reason kind and
    parameters (``webapp.ledger_reasons``); the same entries come back on every wallet visit,
    so the sentence is remembered per locale."""
    return ledger_reasons.render_cached(entry.reason_kind, entry.reason_params, _locale_id())


def chart_number_filter(value, format=None) -> str:
    """A chart value's text: ``format(value)`` trimmed when the chart has a format (a macro),
    else points for a whole number and a decimal otherwise."""
    if format:
        return format(value).strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return points_filter(value)
    return decimal_filter(value)


def upright_bars(values, labels, texts, top, gutter, slot, height, head, few) -> list[tuple]:
    """The upright bars of ``macros/charts.html``: for each, (x, y, height, middle, y of its value,
    label, value's text, crowded), from the sums the macro made with filters on every bar."""
    bars = []
    for index, value in enumerate(values):
        bar_height = round((value / top) * height, 1) if value > 0 else 0
        x = gutter + index * slot
        bars.append((
            round(x + slot * 0.15, 1), head + height - bar_height, bar_height, round(x + slot / 2, 1),
            head + height - bar_height - 3, labels[index], texts[index], not few and index % 3,
        ))
    return bars


@lru_cache(maxsize=4096, typed=True)
def _share_text(share, locale: str) -> str:
    return formatting.share_percent(share, locale=locale)


def share_percent_filter(share) -> str:
    """``formatting.share_percent`` kept per share and locale (a cohort table shows dozens)."""
    return _share_text(share, _locale_id())


def retention_cells_filter(shares) -> Markup:
    """A cohort's row of monthly shares as table cells (empty for months still to come): one
    call a row instead of a loop with a test and a filter for each of its twelve cells."""
    locale = _locale_id()
    return Markup("".join(  # noqa: S704 - escaped cells
        "<td></td>" if share is None else f"<td>{escape(_share_text(share, locale))}</td>" for share in shares
    ))


@lru_cache(maxsize=4096, typed=True)
def _decimal_text(value, locale: str) -> str:
    return formatting.decimal(value, locale=locale)


def decimal_filter(value) -> str:
    """``formatting.decimal`` kept per value and locale."""
    if isinstance(value, int | float):
        return _decimal_text(value, _locale_id())
    return formatting.decimal(value, locale=_locale_id())


@lru_cache(maxsize=4096)
def _phone_text(value: str) -> str:
    from webapp.services import phones

    return phones.format_international(value)


def phone_filter(value) -> str:
    """A stored E.164 number written for people: ``+7 701 123 4567``; a number's text is kept
    (libphonenumber took about 0.3 ms a number, a customer list shows 25)."""
    return _phone_text(value) if value else ""


def contact_email_filter(value) -> str:
    """An e-mail address to show staff; none for an imported person the old program had none for."""
    from webapp.services.accounts import is_placeholder_email

    return "" if is_placeholder_email(value) else (value or "")


def slot(name: str, merchant, **kwargs) -> Markup:
    """Join the HTML that the core and a merchant's enabled plugins contribute to a named slot."""
    if name not in SLOTS:
        raise KeyError(f"unknown template slot {name!r}")
    hook = getattr(hooks_for(merchant), f"neighbourly_tpl_{name}")
    parts = [part for part in hook(merchant=merchant, **kwargs) if part]
    # A plugin that returns a plain string gets it escaped: only Markup passes through as HTML.
    return Markup("").join(escape(part) for part in reversed(parts))


def network_slot(name: str, network) -> Markup:
    """Join the HTML that installed plugins contribute to a named slot of a network's page."""
    if name not in NETWORK_SLOTS:
        raise KeyError(f"unknown network template slot {name!r}")
    hook = getattr(current_app.extensions["neighbourly"].pm.hook, f"neighbourly_tpl_{name}")
    parts = [part for part in hook(network=network) if part]
    return Markup("").join(escape(part) for part in reversed(parts))


def staff_nav(merchant) -> list:
    from webapp.web import roles_allowed

    """Navigation for a merchant's staff pages; owner-only items hidden from cashiers."""
    items = sorted_by_order(
        hooks_for(merchant).neighbourly_collect_nav_items(merchant=merchant, user=current_user)
    )
    role = getattr(g, "staff_role", None)
    visible = [
        item for item in items
        if (role == "owner" or not item.owner_only)
        and role in (roles_allowed(item.endpoint) or (role,))  # the page itself decides
    ]
    return [(item, url_for(item.endpoint, **item.url_params)) for item in visible]


def fixed_url(endpoint: str, **values) -> str:
    """``url_for`` for the links every page repeats (the layout's navigation, static files): the
    same for every request to the same mount point, so each is built once per app (url_for took
    4-18 µs a link, the layout has a dozen)."""
    from flask import request

    urls = current_app.extensions.setdefault("neighbourly_fixed_urls", {})
    key = (request.script_root, endpoint, tuple(sorted(values.items())))
    url = urls.get(key)
    if url is None:
        url = urls[key] = url_for(endpoint, **values)
    return url


def _expiry_policy(merchant) -> str | None:
    """A merchant's points expiry policy in plain words, for the wallet and the card."""
    from webapp.services.points import policy_text

    return policy_text(merchant)


def register(app: Flask) -> None:
    app.jinja_env.globals.update(
        qr_svg=qr_svg,
        slot=slot,
        network_slot=network_slot,
        staff_nav=staff_nav,
        get_locale=get_locale,
        languages=lambda: current_app.config["LANGUAGES"],
        expiry_policy=_expiry_policy,
        upright_bars=upright_bars,
        fixed_url=fixed_url,
    )
    # Flask-Babel installed its gettext callables; these give the same text, resolved once a request.
    app.jinja_env.install_gettext_callables(
        gettext=_gettext, ngettext=_ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext,
    )
    # Labels without variables come from a per-catalogue memo, called directly (no alias hop).
    app.jinja_env.globals.update(gettext=_template_gettext, _=_template_gettext)
    app.jinja_env.filters.update(
        money=money_filter,
        points=points_filter,
        ledger_reason=ledger_reason_filter,
        date=date_filter,
        datetime=datetime_filter,
        percent_bp=percent_bp_filter,
        phone=phone_filter,
        contact_email=contact_email_filter,
        rate_number=formatting.rate_number,
        share_percent=share_percent_filter,
        retention_cells=retention_cells_filter,
        file_size=formatting.file_size,
        percent=formatting.percent,
        decimal=decimal_filter,
        chart_number=chart_number_filter,
    )
    app.jinja_env.add_extension("jinja2.ext.do")
