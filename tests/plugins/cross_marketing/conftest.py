"""Fixtures for the cross_marketing tests: a café (issuer) and a salon (distributor) as partners."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from plugins.cross_marketing import services
from plugins.cross_marketing.models import Offer, Partnership
from tests import kit
from tests.kit import enable_plugins
from webapp.extensions import db


@pytest.fixture
def app_overrides():
    # Only the plugins these tests need: other plugins cannot change what is measured here.
    return {"PLUGINS": ["plugins.news", "plugins.cross_marketing"]}


@dataclass
class Street:
    cafe: object
    salon: object
    offer: Offer
    partnership: Partnership


def make_offer(issuer, **fields) -> Offer:
    form = {"face_value": "500", "validity_days": "30", "remainder_policy": "lost"}
    form.update({key: str(value) for key, value in fields.items()})
    return services.create_offer(db.session, issuer, form)


def partner(issuer, distributor, offer, rule_min: str = "", per_day: str = "") -> Partnership:
    partnership = services.invite(db.session, issuer, offer.id, distributor.id)
    return services.respond(
        db.session, distributor, partnership.id, True, {"rule_min_purchase": rule_min, "max_per_day": per_day}
    )


@pytest.fixture
def street(make_merchant, make_user):
    cafe = make_merchant(name="Café Lipa", cashiers=[make_user(name="Cafe Cashier")])
    salon = make_merchant(name="Salon Aru", cashiers=[make_user(name="Salon Cashier")])
    enable_plugins(cafe, "cross_marketing")
    enable_plugins(salon, "cross_marketing")
    offer = make_offer(cafe)
    partnership = partner(cafe, salon, offer)
    return Street(cafe, salon, offer, partnership)


def buy(merchant, membership, amount: int = 450_000, key: str | None = None, **options):
    return kit.buy(merchant, membership, amount, key=key, **options)
