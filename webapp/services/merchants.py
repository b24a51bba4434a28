"""Networks and merchants: sign-up, approval by the operator, settings, staff and plugins."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.errors import Conflict, Forbidden, NotFound, ValidationFailed
from webapp.models import Merchant, MerchantPlugin, Network, StaffRole, User
from webapp.models.base import utcnow
from webapp.plugins import PluginRegistry, forget_enabled_cache, is_enabled, only_plugin
from webapp.services import codes

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


def unique_slug(session: Session, name: str) -> str:
    base = slugify(name)
    slug, counter = base, 2
    while session.scalar(select(Merchant.id).where(Merchant.slug == slug)) is not None:
        slug, counter = f"{base}-{counter}", counter + 1
    return slug


def new_join_code(session: Session) -> str:
    while True:
        code = codes.short_code(6)
        if session.scalar(select(Merchant.id).where(Merchant.join_code == code)) is None:
            return code


def create_network(
    session: Session, name: str, currency: str, operator: User | None, default_locale: str = "en",
    slug: str | None = None, description: str = "",
) -> Network:
    network = Network(
        name=name, slug=slug or slugify(name), currency=currency.upper(),
        default_locale=default_locale, operator_id=operator.id if operator else None,
        description=description,
    )
    session.add(network)
    session.commit()
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
    cashback_bp: int = 500, max_points_share_pct: int = 50, commit: bool = True,
) -> Merchant:
    """A business owner creates a merchant profile; it waits for the operator's approval."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed("Enter the business name (at most 120 characters).")
    if category not in CATEGORIES:
        raise ValidationFailed("Choose a category from the list.")
    validate_rates(cashback_bp, max_points_share_pct)
    merchant = Merchant(
        network_id=network.id, name=name, slug=unique_slug(session, name), category=category,
        description=description.strip(), address=address.strip(), opening_hours=opening_hours.strip(),
        phone=phone.strip(), cashback_bp=cashback_bp, max_points_share_pct=max_points_share_pct,
        join_code=new_join_code(session), status="pending",
    )
    session.add(merchant)
    session.flush()
    session.add(StaffRole(user_id=owner.id, merchant_id=merchant.id, role="owner"))
    if commit:
        session.commit()
    return merchant


def validate_rates(cashback_bp: int, max_points_share_pct: int) -> None:
    if not 0 <= cashback_bp <= 10000:
        raise ValidationFailed("Cashback must be between 0% and 100%.")
    if not 0 <= max_points_share_pct <= 100:
        raise ValidationFailed("The share of a bill payable with points must be between 0% and 100%.")


def _require_operator(network: Network, user: User) -> None:
    if network.operator_id != user.id and not user.is_platform_admin:
        raise NotFound("No such network.")


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
        raise NotFound("No such merchant in this network.")
    if merchant.status not in ("pending", "declined"):
        raise Conflict("This merchant has already been decided.")
    if approve:
        merchant.status = "active"
        merchant.approved_at = utcnow()
        merchant.decline_reason = ""
    else:
        reason = (reason or "").strip()
        if not reason:
            raise ValidationFailed("Say why the application is declined; the owner will see it.")
        merchant.status = "declined"
        merchant.decline_reason = reason[:1000]
    session.commit()
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
        raise NotFound("No such merchant in this network.")
    if suspended and merchant.status != "active":
        raise Conflict("Only an active merchant can be suspended.")
    if not suspended and merchant.status != "suspended":
        raise Conflict("Only a suspended merchant can be reinstated.")
    merchant.status = "suspended" if suspended else "active"
    merchant.decline_reason = (reason or "").strip()[:1000] if suspended else ""
    session.commit()
    return merchant


# --------------------------------------------------------------------------- marketplace


def set_plugin_enabled(
    session: Session, registry: PluginRegistry, merchant: Merchant, plugin_name: str, enabled: bool,
    actor: User,
) -> MerchantPlugin:
    """Switch a plugin on or off for one merchant; effective at once, data always kept."""
    if staff_role(session, actor.id, merchant.id) != "owner":
        raise Forbidden("Only the owner can change plugins.")
    meta = registry.meta(plugin_name)
    if meta is None:
        raise NotFound("No such plugin.")
    if enabled:
        missing = [name for name in meta.requires if not is_enabled(merchant, name)]
        if missing:
            titles = ", ".join(registry.metas[n].title if n in registry.metas else n for n in missing)
            raise Conflict(f"{meta.title} needs {titles}; switch that on first.")
    else:
        dependants = [
            other.title for other in registry.installed()
            if plugin_name in other.requires and is_enabled(merchant, other.name)
        ]
        if dependants:
            raise Conflict(f"{', '.join(dependants)} needs {meta.title}; switch that off first.")
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
    forget_enabled_cache(merchant)
    try:
        callback = only_plugin(plugin_name)
        if enabled:
            callback.neighbourly_plugin_enabled(merchant=merchant, plugin_name=plugin_name, session=session)
        else:
            callback.neighbourly_plugin_disabled(merchant=merchant, plugin_name=plugin_name, session=session)
        session.commit()
    except Exception:
        session.rollback()
        forget_enabled_cache(merchant)
        raise
    forget_enabled_cache(merchant)
    return row


def save_plugin_settings(
    session: Session, registry: PluginRegistry, merchant: Merchant, plugin_name: str,
    form: dict[str, str], actor: User,
) -> dict:
    """Validate submitted settings against the plugin's declaration and store them."""
    if staff_role(session, actor.id, merchant.id) != "owner":
        raise Forbidden("Only the owner can change plugin settings.")
    meta = registry.meta(plugin_name)
    if meta is None:
        raise NotFound("No such plugin.")
    values = {spec.name: spec.parse(form.get(spec.name)) for spec in meta.settings}
    row = session.scalar(
        select(MerchantPlugin).where(
            MerchantPlugin.merchant_id == merchant.id, MerchantPlugin.plugin_name == plugin_name
        )
    )
    if row is None:
        row = MerchantPlugin(merchant_id=merchant.id, plugin_name=plugin_name, enabled=False)
        session.add(row)
    row.settings = values
    session.commit()
    return values
