"""Sample news for the demo street: two posts per merchant, written in the owner's language."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugins.news import services
from plugins.news.models import NewsPost
from webapp.models import Merchant, StaffRole
from webapp.models.base import utcnow
from webapp.services.hours import open_around_the_clock


def add_demo_posts(session: Session, merchant: Merchant, neighbours: list[Merchant]) -> None:
    if services.count_posts(session, merchant.id):
        return
    owner_id = session.scalar(select(StaffRole.user_id).where(
        StaffRole.merchant_id == merchant.id, StaffRole.role == "owner"))
    names = ", ".join(neighbour.name for neighbour in neighbours[:3])
    if open_around_the_clock(merchant.opening_hours):  # nothing to open earlier
        first = (20, _("Open at any hour"), _(
            "Day or night, come by when it suits you: your card works at every hour, and every "
            "visit brings points."))
    else:
        first = (20, _("Our autumn hours"), _(
            "From Monday we open an hour earlier. Come by on your way to work: your card works as "
            "always, and every visit brings points."))
    posts = [
        first,
        (3, _("One card for the whole street"), _(
            "Your %(merchant)s card now also works with our neighbours: %(names)s. Ask at the till "
            "about their certificates.", merchant=merchant.name, names=names or _("the whole street"))),
    ]
    for days_ago, title, body in posts:
        session.add(NewsPost(merchant_id=merchant.id, title=title, body=body, link="",
                             created_by_id=owner_id, published_at=utcnow() - timedelta(days=days_ago)))
    session.flush()
