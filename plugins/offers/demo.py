"""Demo content for offers: a "we miss you" offer already sent to the demo shop's quiet customers."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugins.offers import services
from plugins.offers.models import SegmentOffer


def _owner_id(session: Session, merchant_id: int) -> int | None:
    from webapp.plugin_api import StaffRole

    return session.scalar(
        select(StaffRole.user_id)
        .where(StaffRole.merchant_id == merchant_id, StaffRole.role == "owner")
        .limit(1)
    )


def add_demo_offer(session: Session, merchant) -> None:
    """Send 200 points to members without a visit for 30 days (nothing when nobody matches)."""
    if (
        session.scalar(
            select(SegmentOffer.id).where(SegmentOffer.merchant_id == merchant.id).limit(1)
        )
        is not None
    ):
        return  # the demo ran before
    criteria = services.Criteria(idle_days=30)
    if not services.segment_members(session, merchant, criteria):
        return
    data = services.OfferInput(
        title=_("We miss you"),
        message=_("Come by this week: a coffee is on us with these points."),
        kind="points",
        points=200,
        reward_key=None,
        control_percent=services.DEFAULT_CONTROL_PERCENT,
    )
    services.send_offer(
        session,
        merchant,
        criteria,
        data,
        _owner_id(session, merchant.id),
        str(current_app.config["SECRET_KEY"]),
        confirm=True,
    )
