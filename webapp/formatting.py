"""Money, points and dates formatted for the user's locale."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency, format_decimal, get_currency_precision
from flask_babel import format_date, format_datetime, get_locale  # noqa: F401


# CLDR's narrow symbols, used where a locale only knows the ISO code (English shows "KZT4,500").
NARROW_SYMBOLS = {
    "KZT": "₸", "RUB": "₽", "UAH": "₴", "BGN": "лв.", "KGS": "сом", "UZS": "сўм", "BYN": "Br",
    "GEL": "₾", "AMD": "֏", "AZN": "₼", "TRY": "₺", "EUR": "€", "USD": "$", "GBP": "£",
}


def minor_to_decimal(amount: int, currency: str) -> Decimal:
    digits = get_currency_precision(currency)
    return Decimal(amount).scaleb(-digits)


def money(amount: int | None, currency: str, locale: str | None = None) -> str:
    """``450000, "KZT"`` -> ``₸4,500.00`` (en) or ``4 500,00 ₸`` (ru)."""
    if amount is None:
        return ""
    locale = locale or str(get_locale() or "en")
    text = format_currency(minor_to_decimal(amount, currency), currency, locale=locale)
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
        raise ValueError("Enter an amount.")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    else:
        cleaned = cleaned.replace(",", "")
    try:
        value = Decimal(cleaned)
    except ArithmeticError:
        raise ValueError("Enter the amount as a number, for example 4500 or 4500.50.") from None
    if not value.is_finite():
        raise ValueError("Enter the amount as a number, for example 4500 or 4500.50.")
    digits = get_currency_precision(currency)
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        raise ValueError(f"At most {digits} digits after the decimal point.")
    return int(minor)


def points(value: int | None, locale: str | None = None) -> str:
    locale = locale or str(get_locale() or "en")
    return format_decimal(value or 0, locale=locale)
