"""The demo street (small) and one person of each role on it, for tests that walk the pages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, func, select

import neighbourly_demo as demo
from webapp.extensions import db
from webapp.models import Membership, Merchant, StaffRole, User


@dataclass(frozen=True)
class DemoPeople:
    """Plain values (no ORM objects) about the demo street's people and pages."""

    customer_email: str
    membership_ids: tuple[int, ...]
    shop_slug: str
    owner_email: str
    cashier_email: str
    operator_email: str
    survey_token: str | None


def load_demo_people() -> DemoPeople:
    """Load the demo street (small) inside an app context; the first shop has every plugin on and
    the customer has exactly two cards, both at shops with every plugin on."""
    demo.load(echo=lambda line: None, customers=30, purchases=200)
    plugin_shops = db.session.scalars(select(Merchant.id).order_by(Merchant.id).limit(demo.PLUGIN_MERCHANTS)).all()
    two_cards = (
        select(Membership.user_id)
        .group_by(Membership.user_id)
        .having(func.count() == 2)
        .having(func.sum(Membership.merchant_id.in_(plugin_shops).cast(Integer)) == 2)
    )
    customer = db.session.scalars(select(User).where(User.id.in_(two_cards)).order_by(User.id)).first()
    assert customer is not None, "the demo has a customer with two cards at plugin shops"
    memberships = db.session.scalars(
        select(Membership).where(Membership.user_id == customer.id).order_by(Membership.id)
    ).all()
    shop = db.session.get(Merchant, memberships[0].merchant_id)
    staff = dict(db.session.execute(
        select(StaffRole.role, User.email).join(User, User.id == StaffRole.user_id)
        .where(StaffRole.merchant_id == shop.id)
    ).all())
    token = None
    try:
        from plugins.surveys.models import Survey

        token = db.session.scalar(
            select(Survey.token).where(Survey.merchant_id == shop.id, Survey.status == "open").order_by(Survey.id)
        )
    except ImportError:  # the surveys plugin is not installed in this app
        pass
    return DemoPeople(
        customer.email, tuple(m.id for m in memberships), shop.slug, staff["owner"], staff["cashier"],
        demo.OPERATOR_EMAIL, token,
    )
