"""Concurrent retries of one API sale (one idempotency key, released together) give one purchase,
one delivery per subscribed endpoint and one request at the receiver, in every round."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.api.test_api import auth, new_key
from tests.concurrency import race
from tests.webhooks.conftest import register
from webapp.extensions import db
from webapp.models import Purchase, WebhookDelivery

THREADS = 12


@pytest.fixture
def app_overrides():
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": THREADS + 2, "max_overflow": 0}}


@pytest.mark.slow
def test_concurrent_retries_of_one_sale_deliver_it_once_per_endpoint(
    app, client, make_merchant, make_member, receiver, patient_sqlite
):
    shop = make_merchant(name="Bakery")
    client.login(shop.owner)
    _first, one = register(client, shop, receiver.url + "?one", ["purchase.recorded"])
    _second, two = register(client, shop, receiver.url + "?two", ["purchase.recorded", "purchase.refunded"])
    receiver.secrets.extend([one, two])
    member = make_member(shop)
    secret = new_key(shop)
    body = json.dumps({"membership_id": member.id, "amount": 5000})
    db.session.commit()

    def post(thread, round_number, repeat):
        response = app.test_client().post(
            "/api/v1/purchases", data=body, content_type="application/json",
            headers=auth(secret, f"race-{repeat}"),
        )
        return response.status_code, response.get_data()

    for repeat in range(3):
        outcomes = race(app, THREADS, lambda t, r, repeat=repeat: post(t, r, repeat))
        assert len(set(outcomes)) == 1 and outcomes[0][0] == 201, set(outcomes)
    purchases = set(db.session.scalars(select(Purchase.id)))
    assert len(purchases) == 3
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 6
    for path, key in (("?one", one), ("?two", two)):
        seen = [r for r in receiver.requests if r.path.endswith(path)]
        assert sorted(r.payload["data"]["id"] for r in seen) == sorted(purchases)
        assert all(r.verified_with == [key] for r in seen)
    assert len({r.message_id for r in receiver.requests}) == 6
