"""Phone numbers: parsed, validated and stored in E.164 with ``phonenumbers``, the network's
country as the default region, so "8 701 …", "+7 701 …" and "701 …" are one person."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from babel.core import get_global
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.errors import InvalidPhone
from webapp.models import Membership, Merchant, Network

MAX_INPUT_LENGTH = 40  # longer text is not a phone number, whatever its digits


def country_codes() -> list[str]:
    """Every region ``phonenumbers`` knows (ISO 3166 alpha-2), sorted."""
    return sorted(phonenumbers.SUPPORTED_REGIONS)


def clean_country(code: str | None) -> str | None:
    """``code`` as a known two-letter region in capitals, or None."""
    code = (code or "").strip().upper()
    return code if code in phonenumbers.SUPPORTED_REGIONS else None


@lru_cache(maxsize=256)
def default_country(currency: str | None, timezone: str | None) -> str | None:
    """A sensible country for a network: its time zone's territory (Asia/Almaty → KZ), else the
    one territory that uses its currency (KZT → KZ); None when neither says (UTC and EUR)."""
    territory = get_global("zone_territories").get(timezone or "")
    if clean_country(territory):
        return territory
    code = (currency or "").upper()
    users = [
        region for region, currencies in get_global("territory_currencies").items()
        if clean_country(region) and any(entry[0] == code and entry[2] is None and entry[3] for entry in currencies)
    ]
    return users[0] if len(users) == 1 else None


def parse(text: str | None, region: str | None) -> str | None:
    """``text`` as an E.164 number (``+77011234567``), None when blank; ``InvalidPhone`` otherwise.

    A number without ``+`` is read as a national one of ``region`` (with or without the trunk
    prefix: "8 701 …" and "701 …" in Kazakhstan). Without a region it needs the ``+``.
    """
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidPhone(_("That is too long for a phone number."))
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        if region:
            example = format_national(_example(region), region)
            raise InvalidPhone(_(
                "This is not a valid phone number. Write it as %(example)s, or with the country "
                "code, e.g. +7 701 123 4567.", example=example,
            ))
        raise InvalidPhone(_("Write the phone number with its country code, e.g. +7 701 123 4567."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_or_none(text: str | None, region: str | None) -> str | None:
    """Like ``parse`` but None for anything invalid (lookups: what does not parse finds nobody)."""
    try:
        return parse(text, region)
    except InvalidPhone:
        return None


@lru_cache(maxsize=64)
def _example(region: str) -> str:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164) if example else ""


def format_national(e164: str | None, region: str | None) -> str:
    """How people of ``region`` write the number (``8 (701) 123 4567``); international otherwise."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    if region and phonenumbers.region_code_for_number(number) == region:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def format_international(e164: str | None) -> str:
    """``+7 701 123 4567``: readable anywhere."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def network_region(network: Network | None) -> str | None:
    return clean_country(network.country) if network is not None else None


def merchant_region(merchant: Merchant) -> str | None:
    return network_region(merchant.network)


def region_for_user(session: Session, user_id: int | None) -> str | None:
    """The default region for a person's own phone: the country of the network of their first
    card, else of the first network on this server (a street runs one network as a rule)."""
    if user_id is not None:
        country = session.scalar(
            select(Network.country)
            .join(Merchant, Merchant.network_id == Network.id)
            .join(Membership, Membership.merchant_id == Merchant.id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.id)
            .limit(1)
        )
        if clean_country(country):
            return country
    return clean_country(session.scalar(select(Network.country).order_by(Network.id).limit(1)))
