"""Sample certificates for the demo street: each merchant offers one, the next neighbour hands it out."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugins.cross_marketing import services
from plugins.cross_marketing.models import Offer
from webapp.plugin_api import Merchant


def add_demo_partnership(session: Session, merchant: Merchant, neighbours: list[Merchant]) -> None:
    """A 1,000 certificate for a bill of 3,000 or more, handed out by the neighbour after ``merchant``
    (in a ring) with every purchase of 5,000 or more."""
    if not neighbours or session.scalar(select(Offer.id).where(Offer.issuer_id == merchant.id).limit(1)):
        return
    offer = services.create_offer(session, merchant, {
        "face_value": "1000", "min_purchase": "3000", "validity_days": "30", "remainder_policy": "lost",
        "total_cap": "500", "per_customer_cap": "2",
        "message": _("A welcome from your neighbours at %(name)s.", name=merchant.name),
    })
    later = [n for n in neighbours if n.id > merchant.id]
    distributor = later[0] if later else neighbours[0]
    partnership = services.invite(session, merchant, offer.id, distributor.id)
    services.respond(session, distributor, partnership.id, True, {"rule_min_purchase": "5000", "max_per_day": ""})
