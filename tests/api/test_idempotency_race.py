"""Fifty POS retries of one sale, released together: one purchase and fifty identical answers."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.api.test_api import auth, new_key
from tests.concurrency import race
from webapp.extensions import db
from webapp.models import Membership, Purchase

THREADS = 50


@pytest.fixture
def app_overrides():
    # One connection per thread: the race is about the key, not about waiting for the pool.
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": THREADS + 2, "max_overflow": 0}}


@pytest.fixture
def shop(make_merchant):
    return make_merchant(name="Bakery")


@pytest.mark.slow
def test_fifty_concurrent_posts_with_one_key_record_one_purchase(app, shop, make_member, patient_sqlite):
    member = make_member(shop)
    secret = new_key(shop)
    body = json.dumps({"membership_id": member.id, "amount": 5000})
    db.session.commit()  # on SQLite even a read holds the write lock until its transaction ends

    def post(thread, round_number):
        response = app.test_client().post(
            "/api/v1/purchases", data=body, content_type="application/json",
            headers=auth(secret, f"race-{round_number}"),
        )
        return response.status_code, response.get_data()

    for repeat in range(2):
        outcomes = race(app, THREADS, lambda t, r, repeat=repeat: post(t, repeat))
        assert len(set(outcomes)) == 1, set(outcomes)
        assert outcomes[0][0] == 201
    assert db.session.scalar(select(func.count()).select_from(Purchase)) == 2
    db.session.refresh(member)
    assert member.balance == 2 * 250
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 1


@pytest.mark.slow
def test_concurrent_retries_of_a_sale_with_items_write_its_lines_once(app, shop, make_member, patient_sqlite):
    from webapp.models import PurchaseItem
    from webapp.services import price_items

    price_items.add_items(db.session, shop, [
        price_items.ItemRow(None, "Rye loaf", 1_200), price_items.ItemRow(None, "Bagel", 350)
    ], "en")
    rye, bagel = price_items.items_of(db.session, shop)
    member = make_member(shop)
    secret = new_key(shop)
    body = json.dumps({"membership_id": member.id, "items": [
        {"price_item_id": rye.id, "quantity": 2}, {"price_item_id": bagel.id, "quantity": 1}]})
    db.session.commit()

    def post(thread, round_number):
        response = app.test_client().post(
            "/api/v1/purchases", data=body, content_type="application/json",
            headers=auth(secret, f"lines-{round_number}"),
        )
        return response.status_code, response.get_data()

    threads = 20
    for repeat in range(3):
        outcomes = race(app, threads, lambda t, r, repeat=repeat: post(t, repeat))
        assert len(set(outcomes)) == 1, set(outcomes)
        assert outcomes[0][0] == 201
    assert db.session.scalar(select(func.count()).select_from(Purchase)) == 3
    lines = db.session.execute(
        select(PurchaseItem.purchase_id, func.count(), func.sum(PurchaseItem.quantity)).group_by(PurchaseItem.purchase_id)
    ).all()
    assert sorted((count, quantity) for _purchase, count, quantity in lines) == [(2, 3)] * 3
