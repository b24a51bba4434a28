"""Money, points and dates formatted for the user's locale."""

from __future__ import annotations

import re
from decimal import Decimal

from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_decimal_symbol,
)
from flask_babel import format_date, format_datetime, get_locale  # noqa: F401
from flask_babel import gettext as _

# CLDR's narrow symbols, used where a locale only knows the ISO code (English shows "KZT4,500").
NARROW_SYMBOLS = {
    "KZT": "₸", "RUB": "₽", "UAH": "₴", "BGN": "лв.", "KGS": "сом", "UZS": "сўм", "BYN": "Br",
    "GEL": "₾", "AMD": "֏", "AZN": "₼", "TRY": "₺", "EUR": "€", "USD": "$", "GBP": "£",
}


# Currencies whose minor unit exists on paper but not in shops (no tiyn coins): whole amounts are
# shown without ".00" ("₸4,500"); an amount with a fraction keeps it.
WHOLE_UNITS_SHOWN = frozenset({"KZT", "UZS", "KGS", "AMD", "HUF", "ISK", "JPY", "KRW"})


def minor_to_decimal(amount: int, currency: str) -> Decimal:
    digits = get_currency_precision(currency)
    return Decimal(amount).scaleb(-digits)


def money(amount: int | None, currency: str, locale: str | None = None) -> str:
    """``450000, "KZT"`` -> ``₸4,500`` (en) or ``4 500 ₸`` (ru); ``450050`` -> ``₸4,500.50``;
    ``450000, "EUR"`` -> ``€4,500.00``."""
    if amount is None:
        return ""
    locale = locale or str(get_locale() or "en")
    text = format_currency(minor_to_decimal(amount, currency), currency, locale=locale)
    digits = get_currency_precision(currency)
    if digits and currency in WHOLE_UNITS_SHOWN and amount % 10**digits == 0:
        zeros = re.escape(get_decimal_symbol(locale)) + "0" * digits + r"(?!\d)"
        text = re.sub(zeros, "", text, count=1)
    symbol = NARROW_SYMBOLS.get(currency)
    if symbol and currency in text:
        text = text.replace(currency, symbol)
    return text


def parse_money(text: str, currency: str) -> int:
    """Parse what a cashier typed ("4500", "4 500,50", "4500.5") into minor units.

    Raises ``ValueError`` with a plain message when the text is not an amount.
    """
    cleaned = (text or "").strip().replace("\u00a0", "").replace(" ", "").replace("_", "")
    if not cleaned:
        raise ValueError(_("Enter an amount."))
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    else:
        cleaned = cleaned.replace(",", "")
    try:
        value = Decimal(cleaned)
    except ArithmeticError:
        raise ValueError(_("Enter the amount as a number, for example 4500 or 4500.50.")) from None
    if not value.is_finite():
        raise ValueError(_("Enter the amount as a number, for example 4500 or 4500.50."))
    digits = get_currency_precision(currency)
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        raise ValueError(_("At most %(digits)s digits after the decimal point.", digits=digits))
    return int(minor)


def points(value: int | None, locale: str | None = None) -> str:
    locale = locale or str(get_locale() or "en")
    return format_decimal(value or 0, locale=locale)


def rate_number(basis_points: int | None, locale: str | None = None) -> str:
    """``250`` -> ``2.5`` (en) or ``2,5`` (ru): basis points as the number before a "%" that a
    translated sentence writes itself ("%(rate)s%% cashback")."""
    locale = locale or str(get_locale() or "en")
    return format_decimal(Decimal(basis_points or 0).scaleb(-2), format="#,##0.##", locale=locale)


def share_percent(share: float | None, locale: str | None = None) -> str:
    """``0.135`` -> ``13.5%`` (en) or ``13,5 %`` (ru): a share as the reader's locale writes it."""
    from babel.numbers import format_percent

    locale = locale or str(get_locale() or "en")
    return format_percent(share or 0, format="#,##0.#%", locale=locale)


def file_size(size: int | None, locale: str | None = None) -> str:
    """``5_242_880`` -> ``5 MB`` (en) or ``5 МБ`` (ru), in the reader's units and separators."""
    from babel.units import format_unit

    locale = locale or str(get_locale() or "en")
    size = size or 0
    for unit, scale in (("digital-megabyte", 2**20), ("digital-kilobyte", 2**10)):
        if size >= scale:
            return format_unit(Decimal(size) / scale, unit, length="short", format="#,##0.#", locale=locale)
    return format_unit(size, "digital-byte", length="short", locale=locale)


def percent_bp(basis_points: int | None, locale: str | None = None) -> str:
    """``250`` -> ``2.5%`` (en) or ``2,5%`` (ru): basis points as a percentage, no trailing zeros."""
    locale = locale or str(get_locale() or "en")
    return format_decimal(Decimal(basis_points or 0).scaleb(-2), format="#,##0.##", locale=locale) + "%"
