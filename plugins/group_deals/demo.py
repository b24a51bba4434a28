"""Sample group deal for the demo street: one open deal a few people short of its next tier, and a
board of customers' ideas with votes."""

from __future__ import annotations

from datetime import timedelta

from babel.numbers import get_currency_precision
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugins.group_deals import services
from plugins.group_deals.models import Deal
from webapp.models import Membership, Merchant
from webapp.models.base import utcnow
from webapp.services.hours import open_around_the_clock

JOINED = 17  # the tiers are at 10, 20 and 40 people: three more and the price drops


def add_demo_deal(session: Session, merchant: Merchant, neighbours: list[Merchant]) -> None:
    if session.scalar(select(func.count(Deal.id)).where(Deal.merchant_id == merchant.id)):
        return
    members = list(session.scalars(
        select(Membership).where(Membership.merchant_id == merchant.id, Membership.left_at.is_(None))
        .order_by(Membership.id).limit(60)
    ))
    unit = 100 * 10 ** get_currency_precision(merchant.network.currency)  # 100 in minor units
    regular = 60 * unit
    now = utcnow()
    data = services.DealInput(
        title=_("Autumn offer for %(name)s regulars", name=merchant.name),
        description=_("Our seasonal offer at a group price: the more neighbours join, the less each pays."),
        regular_price=regular,
        tiers=(services.TierStep(10, 50 * unit), services.TierStep(20, 42 * unit), services.TierStep(40, 35 * unit)),
        max_participants=80, max_quantity=3, deadline=now + timedelta(days=5), redeem_days=14,
    )
    deal = services.create_draft(session, merchant, data)
    services.publish(session, merchant, deal.id, now)
    for index, membership in enumerate(members[:JOINED]):
        services.join(session, merchant, deal.id, membership.user_id, 1 + index % 2,
                      "best" if index % 4 == 0 else "current", now)
    session.execute(Deal.__table__.update().where(Deal.id == deal.id).values(views=JOINED * 3))
    ideas = [
        (_("A family-size version for weekends"), 9, _("Good idea: we are pricing it now.")),
        (_("Gift cards in a nice envelope"), 6, ""),
        (_("A night-time price after midnight") if open_around_the_clock(merchant.opening_hours)
         else _("Open an hour earlier on Saturdays"), 3, ""),
    ]
    for number, (text, votes, answer) in enumerate(ideas):
        if len(members) <= number:
            break
        idea = services.propose_idea(session, merchant, members[number].user_id, text)
        for voter in members[number + 1: number + 1 + votes]:
            services.vote(session, merchant, idea.id, voter.user_id, True)
        if answer:
            services.answer_idea(session, merchant, idea.id, answer)
    session.flush()
