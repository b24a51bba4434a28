"""Partnerships: an issuer's offer handed out by a neighbour, from invitation to end."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session, joinedload

from plugins.cross_marketing.models import Offer, Partnership
from plugins.cross_marketing.services.offers import _count_field, _money_field, get_offer
from webapp.plugin_api import Conflict, Merchant, NotFound, ValidationFailed, unit_of_work, utcnow

# --------------------------------------------------------------------------- partnerships


def invite(session: Session, issuer: Merchant, offer_id: int, distributor_id: Any) -> Partnership:
    """Invite a neighbour to hand out an offer; a declined or ended partnership can be renewed."""
    offer = get_offer(session, issuer, offer_id)
    try:
        wanted = int(distributor_id)
    except (TypeError, ValueError):
        raise ValidationFailed(_("Choose a neighbour to invite."), field="distributor_id") from None
    distributor = session.scalar(
        select(Merchant).where(
            Merchant.id == wanted,
            Merchant.network_id == issuer.network_id,
            Merchant.status == "active",
            Merchant.id != issuer.id,
        )
    )
    if distributor is None:
        raise ValidationFailed(_("Choose an active neighbour from your network."), field="distributor_id")
    partnership = session.scalar(
        select(Partnership).where(
            Partnership.offer_id == offer.id, Partnership.distributor_id == distributor.id
        )
    )
    with unit_of_work(session):
        if partnership is not None:
            if partnership.status in ("invited", "active", "paused"):
                raise Conflict(_("%(name)s is already invited to this offer.", name=distributor.name))
            partnership.status = "invited"
        else:
            partnership = Partnership(offer_id=offer.id, distributor_id=distributor.id, status="invited")
            session.add(partnership)
        partnership.changed_by_id = issuer.id
    return partnership


def get_partnership(session: Session, merchant: Merchant, partnership_id: int) -> Partnership:
    """A partnership this merchant is a side of (issuer or distributor); otherwise 404."""
    partnership = session.scalar(
        select(Partnership)
        .join(Offer, Offer.id == Partnership.offer_id)
        .options(joinedload(Partnership.offer).joinedload(Offer.issuer), joinedload(Partnership.distributor))
        .where(
            Partnership.id == partnership_id,
            or_(Offer.issuer_id == merchant.id, Partnership.distributor_id == merchant.id),
        )
    )
    if partnership is None:
        raise NotFound(_("No such partnership."))
    return partnership


def clean_rule(form: dict[str, str], currency: str) -> tuple[int, int | None]:
    errors: dict[str, str] = {}
    min_purchase = _money_field(errors, "rule_min_purchase", form.get("rule_min_purchase"), currency, False)
    per_day = _count_field(errors, "max_per_day", form.get("max_per_day"), 1, 100000, False)
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    return min_purchase, per_day


def respond(
    session: Session, distributor: Merchant, partnership_id: int, accept: bool, form: dict[str, str]
) -> Partnership:
    """The distributor accepts (with its rule) or declines an invitation."""
    partnership = get_partnership(session, distributor, partnership_id)
    if partnership.distributor_id != distributor.id:
        raise NotFound(_("No such partnership."))
    if partnership.status != "invited":
        raise Conflict(_("This invitation has already been answered."))
    with unit_of_work(session):
        if accept:
            partnership.min_purchase, partnership.max_per_day = clean_rule(form, distributor.network.currency)
            partnership.status = "active"
        else:
            partnership.status = "declined"
        partnership.changed_by_id = distributor.id
    return partnership


def set_rule(session: Session, distributor: Merchant, partnership_id: int, form: dict[str, str]) -> Partnership:
    partnership = get_partnership(session, distributor, partnership_id)
    if partnership.distributor_id != distributor.id:
        raise NotFound(_("No such partnership."))
    if partnership.status not in ("active", "paused"):
        raise Conflict(_("Only a running partnership has a rule to change."))
    min_purchase, per_day = clean_rule(form, distributor.network.currency)
    # Guarded: lowering the daily cap below today's count waits until tomorrow's first issue.
    with unit_of_work(session):
        partnership.min_purchase = min_purchase
        if per_day is not None and partnership.issued_on_day > per_day:
            partnership.issued_on_day = per_day
        partnership.max_per_day = per_day
        partnership.changed_by_id = distributor.id
    return partnership


_TRANSITIONS = {"pause": ("active",), "resume": ("paused",), "end": ("invited", "active", "paused")}
_TARGET = {"pause": "paused", "resume": "active", "end": "ended"}


def change_status(session: Session, merchant: Merchant, partnership_id: int, action: str) -> Partnership:
    """Pause, resume or end, by either side. Ending never touches certificates already issued."""
    partnership = get_partnership(session, merchant, partnership_id)
    if action not in _TRANSITIONS:
        raise ValidationFailed(_("Unknown action."))
    with unit_of_work(session):
        changed = session.execute(
            update(Partnership)
            .where(Partnership.id == partnership.id, Partnership.status.in_(_TRANSITIONS[action]))
            .values(status=_TARGET[action], changed_by_id=merchant.id, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if not changed:
            raise Conflict(_("This partnership cannot be changed that way any more."))
    session.refresh(partnership)
    return partnership


@lru_cache(maxsize=1)
def _merchant_partnerships_statement():
    """Built once: the dashboard panel runs it on every visit."""
    merchant_id = bindparam("merchant_id")
    return (
        select(Partnership)
        .join(Offer, Offer.id == Partnership.offer_id)
        .options(joinedload(Partnership.offer).joinedload(Offer.issuer), joinedload(Partnership.distributor))
        .where(or_(Offer.issuer_id == merchant_id, Partnership.distributor_id == merchant_id))
        .order_by(Partnership.id.desc())
    )


def merchant_partnerships(session: Session, merchant: Merchant) -> list[Partnership]:
    """Every partnership the merchant is a side of, newest first."""
    return list(session.scalars(_merchant_partnerships_statement(), {"merchant_id": merchant.id}))
