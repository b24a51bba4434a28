"""Plugins' events reach webhooks through the core: certificate.redeemed (cross_marketing) and
level.changed (gamification) are offered to owners who enabled them and delivered, verified."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from plugins.cross_marketing.models import Certificate
from tests.kit import enable_plugins
from tests.plugins.cross_marketing.conftest import buy, make_offer, partner
from tests.webhooks.conftest import register
from webapp.extensions import db
from webapp.services.purchases import refund_purchase


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.cross_marketing", "plugins.gamification"]}


def test_plugin_events_are_offered_only_where_the_plugin_is_on(client, make_merchant):
    shop = make_merchant(name="Bakery")
    client.login(shop.owner)
    page = client.get(f"/business/{shop.slug}/integrations/webhooks").get_data(as_text=True)
    assert 'value="level.changed"' not in page and 'value="certificate.redeemed"' not in page
    refused = client.post_form(f"/business/{shop.slug}/integrations/webhooks",
                               {"url": "http://127.0.0.1:9/x", "events": ["level.changed"]})
    assert refused.status_code == 422
    enable_plugins(shop, "gamification")
    page = client.get(f"/business/{shop.slug}/integrations/webhooks").get_data(as_text=True)
    assert 'value="level.changed"' in page and 'value="certificate.redeemed"' not in page


def test_a_level_change_is_delivered_on_the_sale_and_on_its_refund(client, make_merchant, make_member, receiver):
    shop = make_merchant(name="Bakery")
    enable_plugins(shop, "gamification")
    client.login(shop.owner)
    _id, secret = register(client, shop, receiver.url, ["level.changed"])
    receiver.secrets.append(secret)
    member = make_member(shop)
    buy(shop, member, amount=5_000)  # below the first threshold: no change, no event
    assert receiver.requests == []
    sale = buy(shop, member, amount=2_000_000)
    [up] = receiver.requests
    assert up.verified_with == [secret]
    assert up.payload["type"] == "level.changed"
    data = up.payload["data"]
    assert data["membership_id"] == member.id and data["purchase_id"] == sale.id
    assert data["previous_level"]["position"] == 0 and data["level"]["position"] == 1
    assert data["level"]["name"] and data["reason"] == "purchase"
    refund_purchase(db.session, shop, sale.id, shop.owner.id)
    down = receiver.requests[-1]
    assert len(receiver.requests) == 2 and down.verified_with == [secret]
    assert (down.payload["data"]["previous_level"]["position"], down.payload["data"]["level"]["position"],
            down.payload["data"]["reason"]) == (1, 0, "refund")


def test_a_redeemed_certificate_is_delivered_to_the_issuer(client, make_merchant, make_member, receiver):
    cafe = make_merchant(name="Café Lipa")
    salon = make_merchant(name="Salon Aru")
    enable_plugins(cafe, "cross_marketing")
    enable_plugins(salon, "cross_marketing")
    partner(cafe, salon, make_offer(cafe))
    client.login(cafe.owner)
    _id, secret = register(client, cafe, receiver.url, ["certificate.redeemed", "purchase.recorded"])
    receiver.secrets.append(secret)
    at_salon = make_member(salon)
    buy(salon, at_salon)  # the salon gives the café's certificate away
    assert receiver.requests == []  # the salon's sale is not the café's event
    [certificate] = db.session.scalars(select(Certificate).where(Certificate.holder_id == at_salon.user_id))
    at_cafe = make_member(cafe, user=at_salon.user)
    purchase = buy(cafe, at_cafe, amount=200_000, certificate_id=str(certificate.id))
    types = [request.payload["type"] for request in receiver.requests]
    assert sorted(types) == ["certificate.redeemed", "purchase.recorded"]
    [redeemed] = receiver.of_type("certificate.redeemed")
    assert redeemed.verified_with == [secret]
    assert redeemed.payload["data"] == {
        "certificate_id": certificate.id, "purchase_id": purchase.id, "membership_id": at_cafe.id,
        "value_used": purchase.certificate_value_used, "used_up": True, "distributor_id": salon.id,
        "redeemed_at": purchase.created_at.isoformat(),
    }
