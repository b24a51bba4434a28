"""Certificate offers: what an issuer gives away and who may hand it out."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugins.cross_marketing.models import MAX_MESSAGE, Offer
from plugins.cross_marketing.services.base import MAX_DAYS, MAX_FACE_VALUE
from webapp.plugin_api import Merchant, NotFound, ValidationFailed, parse_money, unit_of_work

# --------------------------------------------------------------------------- offers


@dataclass(frozen=True)
class OfferInput:
    face_value: int
    min_purchase: int
    validity_days: int
    total_cap: int | None
    per_customer_cap: int | None
    fee: int
    message: str
    remainder_policy: str


def _money_field(errors: dict, name: str, text: str | None, currency: str, required: bool) -> int:
    text = (text or "").strip()
    if not text:
        if required:
            errors[name] = _("Enter an amount.")
        return 0
    try:
        value = parse_money(text, currency)
    except ValueError:
        errors[name] = _("Enter the amount as a number, for example 500 or 500.50.")
        return 0
    if value < 0:
        errors[name] = _("The amount cannot be negative.")
    elif value > MAX_FACE_VALUE:
        errors[name] = _("That amount is too large; check the number.")
    return value


def _count_field(errors: dict, name: str, text: str | None, low: int, high: int, required: bool) -> int | None:
    text = (text or "").strip()
    if not text:
        if required:
            errors[name] = _("Enter a whole number.")
        return None
    if not text.isdigit() or len(text) > 9:
        errors[name] = _("Enter a whole number.")
        return None
    value = int(text)
    if value < low or value > high:
        errors[name] = _("Enter a number from %(low)s to %(high)s.", low=low, high=high)
    return value


def clean_offer(form: dict[str, str], currency: str) -> OfferInput:
    """Check every field at once; ``ValidationFailed.details["errors"]`` maps field -> message."""
    errors: dict[str, str] = {}
    face_value = _money_field(errors, "face_value", form.get("face_value"), currency, True)
    if "face_value" not in errors and face_value <= 0:
        errors["face_value"] = _("The certificate must be worth more than zero.")
    min_purchase = _money_field(errors, "min_purchase", form.get("min_purchase"), currency, False)
    fee = _money_field(errors, "fee", form.get("fee"), currency, False)
    validity = _count_field(errors, "validity_days", form.get("validity_days"), 1, MAX_DAYS, True)
    total_cap = _count_field(errors, "total_cap", form.get("total_cap"), 1, 10**7, False)
    per_customer = _count_field(errors, "per_customer_cap", form.get("per_customer_cap"), 1, 1000, False)
    message = " ".join((form.get("message") or "").split())
    if len(message) > MAX_MESSAGE:
        errors["message"] = _("At most %(count)s characters.", count=MAX_MESSAGE)
    policy = form.get("remainder_policy") or "lost"
    if policy not in ("lost", "kept"):
        errors["remainder_policy"] = _("Choose what happens to an unused remainder.")
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    return OfferInput(face_value, min_purchase, validity or 1, total_cap, per_customer, fee, message, policy)


def create_offer(session: Session, issuer: Merchant, form: dict[str, str]) -> Offer:
    data = clean_offer(form, issuer.network.currency)
    with unit_of_work(session):
        offer = Offer(issuer_id=issuer.id, **data.__dict__)
        session.add(offer)
    return offer


def get_offer(session: Session, issuer: Merchant, offer_id: int) -> Offer:
    """An offer of this issuer; another merchant's offer is as missing as none."""
    offer = session.scalar(select(Offer).where(Offer.id == offer_id, Offer.issuer_id == issuer.id))
    if offer is None:
        raise NotFound(_("No such offer."))
    return offer


def issuer_offers(session: Session, issuer: Merchant) -> list[Offer]:
    return list(session.scalars(select(Offer).where(Offer.issuer_id == issuer.id).order_by(Offer.id.desc())))


def possible_distributors(session: Session, issuer: Merchant) -> list[Merchant]:
    """Active neighbours in the issuer's network (not the issuer itself)."""
    return list(
        session.scalars(
            select(Merchant)
            .where(
                Merchant.network_id == issuer.network_id,
                Merchant.id != issuer.id,
                Merchant.status == "active",
            )
            .order_by(Merchant.name)
        )
    )
