"""A neighbour's certificate as an offer: chosen among the core's reward options (cross_marketing
offers them; neither plugin imports the other), issued once when the customer takes the offer."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from plugins.cross_marketing.models import Certificate
from plugins.offers import services
from tests.kit import enable_plugins
from tests.plugins.cross_marketing.conftest import make_offer, partner
from tests.plugins.offers.conftest import SECRET
from webapp.extensions import db


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.news", "plugins.cross_marketing", "plugins.offers"]}


def test_a_certificate_offer_issues_the_neighbours_certificate_once(
    shop, make_merchant, make_member
):
    cafe = make_merchant(name="Café Lipa")
    enable_plugins(cafe, "cross_marketing")
    enable_plugins(shop, "cross_marketing")
    partner(cafe, shop, make_offer(cafe, face_value="500"))
    (option,) = services.reward_options(shop, db.session)
    data, errors = services.parse_offer(
        {
            "title": "A coffee next door",
            "kind": "certificate",
            "reward_key": option.key,
            "control_percent": "0",
        },
        [option],
    )
    assert not errors
    member = make_member(shop)
    offer = services.send_offer(
        db.session, shop, services.Criteria(), data, shop.owner.id, SECRET, options=[option]
    )
    assert offer.reward_label == option.label
    claim, made = services.claim(db.session, shop, offer.id, member)
    again, made_again = services.claim(db.session, shop, offer.id, member)
    assert made and not made_again and again.id == claim.id
    held = db.session.scalars(
        select(Certificate).where(Certificate.holder_id == member.user_id)
    ).all()
    assert (
        len(held) == 1
        and claim.reward_ref
        and claim.reward_ref != f"offers:offers_claims:{claim.id}"
    )

    _data, errors = services.parse_offer(
        {"title": "x", "kind": "certificate", "reward_key": "cross_marketing:999"}, [option]
    )
    assert "reward_key" in errors
