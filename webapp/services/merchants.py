"""Networks and merchants: sign-up, approval by the operator, settings, staff and plugins."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.errors import Conflict, Forbidden, NotFound, ValidationFailed
from webapp.models import Merchant, MerchantPlugin, Network, StaffRole, User
from webapp.models.base import utcnow
from webapp.plugins import (
    PluginRegistry,
    is_enabled,
    only_plugin,
    plugin_settings,
    required_by_settings,
)
from webapp.services import codes
from webapp.services import hours as hours_service
from webapp.timezones import DEFAULT_TIMEZONE, clean_timezone
from webapp.unit_of_work import unit_of_work

CATEGORIES = {
    "beauty": "Beauty salon",
    "restaurant": "Restaurant",
    "cafe": "Coffee shop",
    "bakery": "Bakery",
    "car_wash": "Car wash",
    "cinema": "Cinema",
    "flowers": "Flower shop",
    "grocery": "Grocery",
    "fitness": "Fitness",
    "pharmacy": "Pharmacy",
    "services": "Services",
    "other": "Other",
}

_TRANSLIT = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
        "з": "z", "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
        "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "ts",
        "ч": "ch", "ш": "sh", "щ": "sch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu",
        "я": "ya", "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u",
        "һ": "h", "і": "i",
    }
)


def slugify(text: str) -> str:
    text = (text or "").lower().translate(_TRANSLIT)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60] or "merchant"


# Path words under /business/ that a merchant slug must never shadow.
RESERVED_SLUGS = frozenset({"apply", "invitations", "media", "networks", "static"})


def unique_slug(session: Session, name: str) -> str:
    base = slugify(name)
    slug, counter = base, 2
    while (
        slug in RESERVED_SLUGS
        or session.scalar(select(Merchant.id).where(Merchant.slug == slug)) is not None
    ):
        slug, counter = f"{base}-{counter}", counter + 1
    return slug


def new_join_code(session: Session) -> str:
    while True:
        code = codes.short_code(6)
        if session.scalar(select(Merchant.id).where(Merchant.join_code == code)) is None:
            return code


def create_network(
    session: Session, name: str, currency: str, operator: User | None, default_locale: str = "en",
    slug: str | None = None, description: str = "", point_value_minor: int = 1,
    timezone: str = DEFAULT_TIMEZONE, country: str | None = None,
) -> Network:
    from webapp.services import phones

    network = Network(
        name=name, slug=slug or slugify(name), currency=currency.upper(),
        default_locale=default_locale, operator_id=operator.id if operator else None,
        description=description, point_value_minor=point_value_minor, timezone=timezone,
        country=phones.clean_country(country) or phones.default_country(currency.upper(), timezone) or "",
    )
    with unit_of_work(session):
        session.add(network)
    return network


def clean_network(
    session: Session, name: str, currency: str, locale: str, point_value: str | None
) -> tuple[str, str, str, int]:
    """Check what ``flask network-create`` was given: (name, slug, currency, point value in minor units).

    The point value defaults to one major unit of the currency (1 point = 1 ₸, 1 €), written the
    way prices are (``0.50`` for half a unit).
    """
    from babel.numbers import UnknownCurrencyError, get_currency_name

    from webapp.formatting import parse_money

    name = " ".join((name or "").split())
    if not name or len(name) > 120:
        raise ValidationFailed(_("Give the network a name of at most 120 characters."))
    slug = slugify(name)
    if session.scalar(select(Network.id).where(Network.slug == slug)) is not None:
        raise Conflict(_("A network with the address %(slug)s already exists.", slug=slug))
    code = (currency or "").strip().upper()
    try:
        known = len(code) == 3 and get_currency_name(code, locale="en") != code
    except UnknownCurrencyError:
        known = False
    if not known:
        raise ValidationFailed(_("Give the currency as an ISO 4217 code such as KZT, EUR or BGN."))
    clean_network_locale(locale)
    try:
        value = parse_money(point_value or "1", code)
    except ValueError as error:
        raise ValidationFailed(str(error)) from error
    if value <= 0:
        raise ValidationFailed(_("A point must be worth more than nothing."))
    return name, slug, code, value


def clean_network_timezone(name: str | None) -> str:
    """An IANA time zone name as the network's, or a clear refusal."""
    found = clean_timezone(name)
    if found is None:
        raise ValidationFailed(_(
            "Give the time zone by its IANA name, for example Asia/Almaty or Europe/Sofia."
        ))
    return found


def clean_network_locale(locale: str | None) -> str:
    """One of the site's languages (``LANGUAGES``) as the network's default, or a clear refusal."""
    from flask import current_app

    languages = current_app.config["LANGUAGES"]
    if locale not in languages:
        raise ValidationFailed(_(
            "The default language must be one of: %(languages)s.", languages=", ".join(languages)
        ))
    return locale


def set_network_locale(session: Session, network: Network, locale: str | None) -> Network:
    """The operator sets the network's language: messages and letters to customers who have not
    chosen one are written in it, and letters start from its wording."""
    from webapp.services import price_items

    changed = network.default_locale != clean_network_locale(locale)
    with unit_of_work(session):
        network.default_locale = clean_network_locale(locale)
        if changed:  # the street's items are stemmed in the network's language: index them again
            price_items.reindex_network(session, network)
    return network


def set_network_timezone(session: Session, network: Network, name: str | None) -> Network:
    """The operator moves the network's clock: times shown and day/week/month boundaries follow."""
    with unit_of_work(session):
        network.timezone = clean_network_timezone(name)
    return network


def set_network_country(session: Session, network: Network, code: str | None) -> Network:
    """The operator sets the street's country: phone numbers typed without a country code are
    read as numbers of this country (import, sign-up, the till)."""
    from webapp.services import phones

    found = phones.clean_country(code)
    if found is None:
        raise ValidationFailed(_("Give the country as a two-letter code such as KZ, RU or BG."))
    with unit_of_work(session):
        network.country = found
    return network


def staff_role(session: Session, user_id: int, merchant_id: int) -> str | None:
    return session.scalar(
        select(StaffRole.role).where(StaffRole.user_id == user_id, StaffRole.merchant_id == merchant_id)
    )


def staff_merchants(session: Session, user_id: int) -> list[tuple[Merchant, str]]:
    rows = session.execute(
        select(Merchant, StaffRole.role)
        .join(StaffRole, StaffRole.merchant_id == Merchant.id)
        .where(StaffRole.user_id == user_id)
        .order_by(Merchant.name)
    ).all()
    return [(merchant, role) for merchant, role in rows]


def apply_to_network(
    session: Session, owner: User, network: Network, *, name: str, category: str,
    description: str = "", address: str = "", opening_hours: str = "", phone: str = "",
    cashback_bp: int = 500, max_points_share_pct: int = 50,
) -> Merchant:
    """A business owner creates a merchant profile; it waits for the operator's approval."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed(_("Enter the business name (at most 120 characters)."))
    if category not in CATEGORIES:
        raise ValidationFailed(_("Choose a category from the list."))
    validate_rates(cashback_bp, max_points_share_pct)
    with unit_of_work(session):  # a caller's own block (the demo) commits instead
        merchant = Merchant(
            network_id=network.id, name=name, slug=unique_slug(session, name), category=category,
            description=description.strip(), address=address.strip(), opening_hours=opening_hours.strip(),
            phone=phone.strip(), cashback_bp=cashback_bp, max_points_share_pct=max_points_share_pct,
            join_code=new_join_code(session), status="pending",
        )
        session.add(merchant)
        session.flush()
        session.add(StaffRole(user_id=owner.id, merchant_id=merchant.id, role="owner"))
        parsed = hours_service.parse_text(opening_hours)
        if parsed:  # hours typed in a form we understand become the weekly hours "open now" reads
            hours_service.save_hours(session, merchant, parsed)
    return merchant


def validate_rates(cashback_bp: int, max_points_share_pct: int) -> None:
    if not 0 <= cashback_bp <= 10000:
        raise ValidationFailed(_("Cashback must be between 0% and 100%."))
    if not 0 <= max_points_share_pct <= 100:
        raise ValidationFailed(_("The share of a bill payable with points must be between 0% and 100%."))


def _require_operator(network: Network, user: User) -> None:
    if network.operator_id != user.id and not user.is_platform_admin:
        raise NotFound(_("No such network."))


def decide_application(
    session: Session, network: Network, operator: User, merchant_id: int, approve: bool,
    reason: str = "",
) -> Merchant:
    """The operator approves or declines a pending merchant (a reason is required to decline)."""
    _require_operator(network, operator)
    merchant = session.scalar(
        select(Merchant).where(Merchant.id == merchant_id, Merchant.network_id == network.id)
    )
    if merchant is None:
        raise NotFound(_("No such merchant in this network."))
    if merchant.status not in ("pending", "declined"):
        raise Conflict(_("This merchant has already been decided."))
    reason = (reason or "").strip()
    if not approve and not reason:
        raise ValidationFailed(_("Say why the application is declined; the owner will see it."))
    with unit_of_work(session):
        if approve:
            merchant.status = "active"
            merchant.approved_at = utcnow()
            merchant.decline_reason = ""
        else:
            merchant.status = "declined"
            merchant.decline_reason = reason[:1000]
    return merchant


def merchant_to_suspend(session: Session, network: Network, operator: User, merchant_id: int) -> Merchant:
    """The active merchant ``merchant_id`` of ``network``, for the operator's confirmation step
    (the same checks as ``set_suspended``, nothing written)."""
    _require_operator(network, operator)
    merchant = session.scalar(
        select(Merchant).where(Merchant.id == merchant_id, Merchant.network_id == network.id)
    )
    if merchant is None:
        raise NotFound(_("No such merchant in this network."))
    if merchant.status != "active":
        raise Conflict(_("Only an active merchant can be suspended."))
    return merchant


def set_suspended(
    session: Session, network: Network, operator: User, merchant_id: int, suspended: bool,
    reason: str = "",
) -> Merchant:
    """Suspend (or reinstate) an active merchant; its customers keep their balances."""
    _require_operator(network, operator)
    merchant = session.scalar(
        select(Merchant).where(Merchant.id == merchant_id, Merchant.network_id == network.id)
    )
    if merchant is None:
        raise NotFound(_("No such merchant in this network."))
    if suspended and merchant.status != "active":
        raise Conflict(_("Only an active merchant can be suspended."))
    if not suspended and merchant.status != "suspended":
        raise Conflict(_("Only a suspended merchant can be reinstated."))
    with unit_of_work(session):
        merchant.status = "suspended" if suspended else "active"
        merchant.decline_reason = (reason or "").strip()[:1000] if suspended else ""
    return merchant


# --------------------------------------------------------------------------- marketplace


def set_plugin_enabled(
    session: Session, registry: PluginRegistry, merchant: Merchant, plugin_name: str, enabled: bool,
    actor: User, notes: list[str] | None = None,
) -> MerchantPlugin:
    """Switch a plugin on or off for one merchant; effective at once, data always kept.

    ``notes``, when given, receives the sentences the plugin's ``plugin_enabled`` callback
    returns for the owner.
    """
    if staff_role(session, actor.id, merchant.id) != "owner":
        raise Forbidden(_("Only the owner can change plugins."))
    meta = registry.meta(plugin_name)
    if meta is None:
        raise NotFound(_("No such plugin."))
    if enabled:
        needed = [*meta.requires, *required_by_settings(meta, plugin_settings(merchant, plugin_name))]
        missing = [name for name in dict.fromkeys(needed) if not is_enabled(merchant, name)]
        if missing:
            titles = ", ".join(str(registry.metas[n].title) if n in registry.metas else n for n in missing)
            raise Conflict(
                _("%(plugin)s needs %(required)s; switch that on first.", plugin=meta.title, required=titles)
            )
    else:
        dependants = [
            other.title for other in registry.installed()
            if is_enabled(merchant, other.name) and (
                plugin_name in other.requires
                or plugin_name in required_by_settings(other, plugin_settings(merchant, other.name))
            )
        ]
        if dependants:
            raise Conflict(_(
                "%(plugins)s needs %(plugin)s; switch that off first.",
                plugins=", ".join(str(title) for title in dependants), plugin=meta.title,
            ))
    # Writing the plugin row makes the unit of work read the merchant's plugins again, and a
    # rollback after it forgets what was read meanwhile (``webapp.unit_of_work``).
    with unit_of_work(session):
        row = session.scalar(
            select(MerchantPlugin).where(
                MerchantPlugin.merchant_id == merchant.id, MerchantPlugin.plugin_name == plugin_name
            )
        )
        if row is None:
            row = MerchantPlugin(merchant_id=merchant.id, plugin_name=plugin_name, settings={})
            session.add(row)
        if row.enabled == enabled:
            return row
        row.enabled = enabled
        session.flush()
        callback = only_plugin(plugin_name)
        if enabled:
            said = callback.neighbourly_plugin_enabled(merchant=merchant, plugin_name=plugin_name, session=session)
            if notes is not None:
                notes.extend(str(sentence) for sentence in said if sentence)
        else:
            callback.neighbourly_plugin_disabled(merchant=merchant, plugin_name=plugin_name, session=session)
    return row


def save_plugin_settings(
    session: Session, registry: PluginRegistry, merchant: Merchant, plugin_name: str,
    form: dict[str, str], actor: User,
) -> dict:
    """Validate submitted settings against the plugin's declaration and store them."""
    if staff_role(session, actor.id, merchant.id) != "owner":
        raise Forbidden(_("Only the owner can change plugin settings."))
    meta = registry.meta(plugin_name)
    if meta is None:
        raise NotFound(_("No such plugin."))
    values = {spec.name: spec.parse(form.get(spec.name)) for spec in meta.settings}
    for spec in meta.settings:
        for choice, needed in spec.requires:
            if values[spec.name] == choice and not is_enabled(merchant, needed):
                title = registry.metas[needed].title if needed in registry.metas else needed
                raise ValidationFailed(
                    _("%(label)s: this choice needs %(plugin)s; switch that on first.",
                      label=spec.label, plugin=title),
                    field=spec.name,
                )
    with unit_of_work(session):
        row = session.scalar(
            select(MerchantPlugin).where(
                MerchantPlugin.merchant_id == merchant.id, MerchantPlugin.plugin_name == plugin_name
            )
        )
        if row is None:
            row = MerchantPlugin(merchant_id=merchant.id, plugin_name=plugin_name, enabled=False)
            session.add(row)
        row.settings = values
    return values


# --------------------------------------------------------------------------- owner settings

MAX_PRICE_ROWS = 100
MAX_PRICE = 10**12  # minor units; larger is a typo
PROFILE_LIMITS = {
    "name": 120, "address": 255, "phone": 40, "description": 4000, "opening_hours": 1000,
}


def parse_percent(text: str | None, *, decimals: int, label: str) -> Decimal:
    """``"5"``, ``"2.5"``, ``"2,5 %"`` -> ``Decimal``; at most ``decimals`` digits after the point."""
    cleaned = (text or "").strip().rstrip("%").strip().replace(",", ".")
    if not cleaned:
        raise ValidationFailed(_("%(label)s: enter a percentage.", label=label))
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValidationFailed(
            _("%(label)s: enter a number such as 5 or 2.5.", label=label)
        ) from None
    if not value.is_finite():
        raise ValidationFailed(_("%(label)s: enter a number such as 5 or 2.5.", label=label))
    if not 0 <= value <= 100:
        raise ValidationFailed(_("%(label)s: must be between 0%% and 100%%.", label=label))
    if value != value.quantize(Decimal(1).scaleb(-decimals)):
        if decimals == 0:
            raise ValidationFailed(_("%(label)s: enter a whole number of percent.", label=label))
        raise ValidationFailed(
            _("%(label)s: at most %(digits)s digits after the decimal point.", label=label,
              digits=decimals)
        )
    return value


def parse_cashback_bp(text: str | None) -> int:
    """Typed cashback percent (5, 2.5, 0.25) -> basis points (500, 250, 25)."""
    return int(parse_percent(text, decimals=2, label=_("Cashback")) * 100)


def parse_points_share_pct(text: str | None) -> int:
    """Typed share of a bill payable with points -> whole percent 0..100."""
    return int(parse_percent(text, decimals=0, label=_("Share of a bill payable with points")))


def update_profile(
    session: Session, merchant: Merchant, *, name: str, category: str, description: str = "",
    address: str = "", phone: str = "", opening_hours: str = "",
) -> Merchant:
    """Change what customers see on the e-card; the slug stays, so printed QR codes keep working.

    Raises ``ValidationFailed`` with ``details["field"]`` naming the offending field.
    """
    values = {
        "name": (name or "").strip(),
        "address": (address or "").strip(),
        "phone": (phone or "").strip(),
        "description": (description or "").strip(),
        "opening_hours": (opening_hours or "").strip(),
    }
    if not values["name"]:
        raise ValidationFailed(_("Enter the business name."), field="name")
    for key, limit in PROFILE_LIMITS.items():
        if len(values[key]) > limit:
            raise ValidationFailed(_("At most %(limit)s characters.", limit=limit), field=key)
    if category not in CATEGORIES:
        raise ValidationFailed(_("Choose a category from the list."), field="category")
    with unit_of_work(session):
        for key, value in values.items():
            setattr(merchant, key, value)
        merchant.category = category
    return merchant


def update_rates(
    session: Session, merchant: Merchant, cashback_bp: int, max_points_share_pct: int
) -> Merchant:
    """Change the cashback rate and the share of a bill payable with points (next sale on)."""
    validate_rates(cashback_bp, max_points_share_pct)
    with unit_of_work(session):
        merchant.cashback_bp = cashback_bp
        merchant.max_points_share_pct = max_points_share_pct
    return merchant


# --------------------------------------------------------------------------- networks


def all_networks(session: Session) -> list[Network]:
    """Networks a business may apply to, by name."""
    return list(session.scalars(select(Network).order_by(Network.name)))


def operated_networks(session: Session, user: User) -> list[Network]:
    """Networks ``user`` runs (every network for a platform admin)."""
    query = select(Network).order_by(Network.name)
    if not user.is_platform_admin:
        query = query.where(Network.operator_id == user.id)
    return list(session.scalars(query))


def network_merchants(
    session: Session, network: Network, status: str, limit: int = 25, offset: int = 0
) -> list[Merchant]:
    """One page of a network's merchants in one status; pending ones oldest first (a queue)."""
    order = Merchant.created_at.asc() if status == "pending" else func.lower(Merchant.name)
    return list(
        session.scalars(
            select(Merchant)
            .where(Merchant.network_id == network.id, Merchant.status == status)
            .order_by(order, Merchant.id)
            .limit(limit)
            .offset(offset)
        )
    )
