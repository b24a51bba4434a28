"""The POS API: keys (hashed, scoped, revoked at once), problem+json errors, tenant isolation,
idempotent purchases and refunds, cursor pagination and per-key rate limits."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import ApiKey, LedgerEntry, Purchase
from webapp.services import api_keys

PROBLEM = "application/problem+json"


@pytest.fixture
def shop(make_merchant):
    return make_merchant(name="Bakery")


def new_key(merchant, scope="till"):
    created = api_keys.create_key(
        db.session, merchant, name=f"POS {scope}", scope=scope, created_by_id=None,
        hash_key="test-secret-key",
    )
    return created.secret


def auth(secret, key=None):
    headers = {"Authorization": f"Bearer {secret}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers


def sale(client, secret, membership, amount=10000, points=0, key=None):
    return client.post(
        "/api/v1/purchases",
        json={"membership_id": membership.id, "amount": amount, "points_to_use": points},
        headers=auth(secret, key or uuid.uuid4().hex),
    )


def assert_problem(response, status, slug):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["type"] == f"/api/v1/problems/{slug}"
    assert body["status"] == status
    assert body["detail"]
    return body


# --------------------------------------------------------------------------- the owner's page


def test_owner_creates_a_key_shown_once_and_stored_hashed(client, shop):
    client.login(shop.owner)
    page = client.post_form(f"/business/{shop.slug}/integrations/keys", {"name": "Front till", "scope": "till"})
    assert page.status_code == 201
    assert page.headers["Cache-Control"] == "no-store"
    secret = re.search(r'class="api-secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    stored = db.session.scalar(select(ApiKey).where(ApiKey.merchant_id == shop.id))
    assert stored.name == "Front till" and stored.scope == "till"
    assert secret not in stored.secret_hash and stored.secret_hash != secret
    assert secret.startswith(stored.prefix)
    listing = client.get(f"/business/{shop.slug}/integrations").get_data(as_text=True)
    assert "Front till" in listing and secret not in listing
    assert client.get("/api/v1/merchant", headers=auth(secret)).status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiKey, stored.id).last_used_at is not None
    assert "never used" not in client.get(f"/business/{shop.slug}/integrations").get_data(as_text=True)


def test_a_key_without_a_name_or_scope_is_refused_with_the_field(client, shop):
    client.login(shop.owner)
    page = client.post_form(f"/business/{shop.slug}/integrations/keys", {"name": " ", "scope": "till"})
    assert page.status_code == 422 and "Give the key a name" in page.get_data(as_text=True)
    page = client.post_form(f"/business/{shop.slug}/integrations/keys", {"name": "X", "scope": "admin"})
    assert page.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_revoking_takes_effect_on_the_next_call(client, shop):
    secret = new_key(shop)
    assert client.get("/api/v1/merchant", headers=auth(secret)).status_code == 200
    key_id = db.session.scalar(select(ApiKey.id))
    client.login(shop.owner)
    assert client.post_form(f"/business/{shop.slug}/integrations/keys/{key_id}/revoke").status_code == 303
    assert_problem(client.get("/api/v1/merchant", headers=auth(secret)), 401, "unauthorized")


def test_the_site_keeps_csrf_while_the_api_needs_none(client, shop, make_member):
    client.login(shop.owner)
    refused = client.post(f"/business/{shop.slug}/integrations/keys", data={"name": "X", "scope": "till"})
    assert refused.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 0
    secret = new_key(shop)
    assert sale(client, secret, make_member(shop)).status_code == 201


def test_other_owners_cannot_see_or_revoke_a_key(client, shop, make_merchant):
    other = make_merchant(name="Car wash")
    new_key(shop)
    key_id = db.session.scalar(select(ApiKey.id))
    client.login(other.owner)
    assert client.get(f"/business/{shop.slug}/integrations").status_code == 404
    assert client.post_form(f"/business/{other.slug}/integrations/keys/{key_id}/revoke").status_code == 404
    assert db.session.get(ApiKey, key_id).revoked_at is None


# --------------------------------------------------------------------------- errors and scope


def test_every_error_class_is_problem_json_never_html(client, shop, make_member):
    secret = new_key(shop)
    member = make_member(shop)
    assert_problem(client.get("/api/v1/merchant"), 401, "unauthorized")
    assert_problem(client.get("/api/v1/merchant", headers=auth("nbly_wrong")), 401, "unauthorized")
    assert_problem(client.get("/api/v1/no-such-thing", headers=auth(secret)), 404, "not-found")
    assert_problem(client.delete("/api/v1/merchant", headers=auth(secret)), 405, "method-not-allowed")
    assert_problem(client.get("/api/v1/purchases/999", headers=auth(secret)), 404, "not-found")
    missing_key = client.post("/api/v1/purchases", json={"membership_id": member.id, "amount": 5}, headers=auth(secret))
    body = assert_problem(missing_key, 422, "validation-failed")
    assert body["errors"][0]["field"] == "Idempotency-Key"
    not_json = client.post("/api/v1/purchases", data="amount=5", headers=auth(secret, "k1"))
    assert_problem(not_json, 422, "validation-failed")
    bad_amount = client.post(
        "/api/v1/purchases", json={"membership_id": member.id, "amount": "lots"}, headers=auth(secret, "k2")
    )
    assert assert_problem(bad_amount, 422, "validation-failed")["errors"][0]["field"] == "amount"
    too_many_points = sale(client, secret, member, amount=1000, points=10)
    assert_problem(too_many_points, 422, "insufficient-points")
    bad_cursor = client.get("/api/v1/purchases?cursor=!!", headers=auth(secret))
    assert assert_problem(bad_cursor, 422, "validation-failed")["errors"][0]["field"] == "cursor"


def test_details_are_translated(client, shop):
    response = client.get("/api/v1/merchant", headers={"Accept-Language": "ru"})
    body = assert_problem(response, 401, "unauthorized")
    assert re.search("[а-яА-Я]", body["detail"]), body["detail"]


def test_a_read_key_reads_but_cannot_sell(client, shop, make_member):
    secret = new_key(shop, scope="read")
    member = make_member(shop)
    assert client.get("/api/v1/memberships", headers=auth(secret)).status_code == 200
    assert_problem(sale(client, secret, member), 403, "forbidden")
    assert db.session.scalar(select(func.count()).select_from(Purchase)) == 0


def test_another_merchants_ids_answer_404(client, shop, make_merchant, make_member):
    other = make_merchant(name="Cinema")
    theirs = make_member(other)
    their_secret = new_key(other)
    their_sale = sale(client, their_secret, theirs).get_json()
    secret = new_key(shop)
    assert_problem(client.get(f"/api/v1/memberships/{theirs.id}", headers=auth(secret)), 404, "not-found")
    assert_problem(client.get(f"/api/v1/purchases/{their_sale['id']}", headers=auth(secret)), 404, "not-found")
    assert_problem(sale(client, secret, theirs), 404, "not-found")
    refund = client.post(f"/api/v1/purchases/{their_sale['id']}/refund", headers=auth(secret, "r1"))
    assert_problem(refund, 404, "not-found")
    assert client.get("/api/v1/purchases", headers=auth(secret)).get_json()["data"] == []
    assert db.session.get(Purchase, their_sale["id"]).refunded_at is None


# --------------------------------------------------------------------------- sales


def test_customer_lookup_by_card_code_qr_and_phone(client, shop, make_member, make_user):
    member = make_member(shop, user=make_user(phone="+77011234567"))
    secret = new_key(shop)
    code = member.user.card_code
    for query in (f"card_code={code}", f"qr=neighbourly:card:{code}", "phone=%2B7 701 123 45 67"):
        found = client.get(f"/api/v1/customers/lookup?{query}", headers=auth(secret))
        assert found.status_code == 200, query
        assert found.get_json()["id"] == member.id
    assert_problem(client.get("/api/v1/customers/lookup?phone=1234567", headers=auth(secret)), 404, "not-found")
    assert_problem(client.get("/api/v1/customers/lookup", headers=auth(secret)), 422, "validation-failed")
    # A NUL byte (PostgreSQL refuses it in text) is simply no card: 404, never a 500.
    assert_problem(client.get(f"/api/v1/customers/lookup?card_code={code[:4]}%00", headers=auth(secret)),
                   404, "not-found")


def test_quote_sale_replay_conflict_and_refund(client, shop, make_member, give_points):
    member = make_member(shop)
    give_points(member, 300)
    secret = new_key(shop)
    quote = client.post("/api/v1/quote", json={"membership_id": member.id, "amount": 1000}, headers=auth(secret))
    assert quote.get_json() == {
        "membership_id": member.id, "amount": 1000, "balance": 300, "max_points": 300, "earn_rate_bp": 500,
    }
    first = sale(client, secret, member, amount=1000, points=200, key="sale-1")
    assert first.status_code == 201
    assert first.get_json()["amount_paid"] == 800 and first.get_json()["points_earned"] == 40
    again = sale(client, secret, member, amount=1000, points=200, key="sale-1")
    assert (again.status_code, again.get_data()) == (first.status_code, first.get_data())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(sale(client, secret, member, amount=999, key="sale-1"), 409, "idempotency-conflict")
    assert db.session.scalar(select(func.count()).select_from(Purchase)) == 1
    purchase_id = first.get_json()["id"]
    refund = client.post(f"/api/v1/purchases/{purchase_id}/refund", headers=auth(secret, "refund-1"))
    assert refund.status_code == 200 and refund.get_json()["refunded_at"]
    replay = client.post(f"/api/v1/purchases/{purchase_id}/refund", headers=auth(secret, "refund-1"))
    assert (replay.status_code, replay.get_data()) == (refund.status_code, refund.get_data())
    assert_problem(
        client.post(f"/api/v1/purchases/{purchase_id}/refund", headers=auth(secret, "refund-2")),
        409, "already-refunded",
    )
    db.session.refresh(member)
    assert member.balance == 300
    ledger = db.session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.membership_id == member.id))
    assert ledger == member.balance


def test_a_declined_sale_replays_its_decline_even_once_points_arrive(client, shop, make_member, give_points):
    member = make_member(shop)
    secret = new_key(shop)
    first = sale(client, secret, member, amount=1000, points=100, key="decline-1")
    assert_problem(first, 422, "insufficient-points")
    give_points(member, 500)
    again = sale(client, secret, member, amount=1000, points=100, key="decline-1")
    assert (again.status_code, again.get_json()) == (first.status_code, first.get_json())
    assert db.session.scalar(select(func.count()).select_from(Purchase)) == 0


def test_pagination_is_stable_under_inserts(client, shop, make_member):
    member = make_member(shop)
    secret = new_key(shop)
    ids = [sale(client, secret, member, amount=100 + n).get_json()["id"] for n in range(5)]
    page = client.get("/api/v1/purchases?limit=2", headers=auth(secret)).get_json()
    seen = [row["id"] for row in page["data"]]
    for n in range(3):  # sales recorded while the POS pages through
        sale(client, secret, member, amount=900 + n)
    while page["next_cursor"]:
        page = client.get(f"/api/v1/purchases?limit=2&cursor={page['next_cursor']}", headers=auth(secret)).get_json()
        seen += [row["id"] for row in page["data"]]
    assert seen == sorted(ids, reverse=True)
    assert_problem(client.get("/api/v1/purchases?limit=0", headers=auth(secret)), 422, "validation-failed")


def test_rate_limits_count_per_key_with_ratelimit_headers(app, client, shop, make_merchant):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    secret = new_key(shop)
    other_secret = new_key(make_merchant(name="Florist"))
    answers = [client.get("/api/v1/merchant", headers=auth(secret)) for _ in range(3)]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert_problem(client.get("/api/v1/merchant", headers=auth(secret)), 429, "rate-limited")
    assert client.get("/api/v1/merchant", headers=auth(other_secret)).status_code == 200


def test_ids_beyond_the_32_bit_columns_are_refused_not_a_database_error(client, shop):
    secret = new_key(shop)
    huge = 3_759_033_077  # PostgreSQL's integer columns cannot even compare with it
    assert_problem(client.get(f"/api/v1/purchases/{huge}", headers=auth(secret)), 404, "not-found")
    assert_problem(client.get(f"/api/v1/memberships/{huge}", headers=auth(secret)), 404, "not-found")
    listed = client.get(f"/api/v1/purchases?membership_id={huge}", headers=auth(secret))
    assert_problem(listed, 422, "validation-failed")
    sold = client.post("/api/v1/purchases", json={"membership_id": huge, "amount": 100}, headers=auth(secret, "big"))
    assert assert_problem(sold, 422, "validation-failed")["errors"][0]["field"] == "membership_id"


def test_a_sale_with_price_list_items_records_its_lines_once(client, shop, make_merchant, make_member):
    from webapp.models import PurchaseItem
    from webapp.services import price_items

    price_items.add_items(db.session, shop, [
        price_items.ItemRow(None, "Rye loaf", 1_200), price_items.ItemRow(None, "Bagel", 350),
    ], "en")
    other = make_merchant(name="Other bakery")
    price_items.add_items(db.session, other, [price_items.ItemRow(None, "Their loaf", 100)], "en")
    db.session.commit()
    rye, bagel = price_items.items_of(db.session, shop)
    theirs = price_items.items_of(db.session, other)[0]
    member, secret = make_member(shop), new_key(shop)
    body = {"membership_id": member.id, "items": [
        {"price_item_id": rye.id, "quantity": 2}, {"price_item_id": bagel.id, "quantity": 3}]}
    key = uuid.uuid4().hex
    first = client.post("/api/v1/purchases", json=body, headers=auth(secret, key))
    assert first.status_code == 201, first.get_data(as_text=True)
    assert first.get_json()["amount"] == 2 * 1_200 + 3 * 350
    again = client.post("/api/v1/purchases", json=body, headers=auth(secret, key))
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    lines = db.session.execute(
        select(PurchaseItem.name, PurchaseItem.unit_price, PurchaseItem.quantity)
        .where(PurchaseItem.purchase_id == first.get_json()["id"]).order_by(PurchaseItem.id)
    ).all()
    assert [tuple(line) for line in lines] == [("Rye loaf", 1_200, 2), ("Bagel", 350, 3)]

    def refused(payload, field):
        answer = client.post("/api/v1/purchases", json=payload, headers=auth(secret, uuid.uuid4().hex))
        problem = assert_problem(answer, 422, "validation-failed")
        assert [error["field"] for error in problem["errors"]] == [field]
        return problem["detail"]

    foreign = {"membership_id": member.id, "items": [{"price_item_id": theirs.id, "quantity": 1}]}
    assert "not in this price list" in refused(foreign, "items")
    assert "sum of the items" in refused({**body, "amount": 999}, "amount")
    assert refused({**body, "items": [{"price_item_id": rye.id, "quantity": 0}]}, "quantity")
    assert refused({**body, "items": [{"price_item_id": rye.id, "colour": "red"}]}, "items[0]")
    assert refused({"membership_id": member.id}, "amount")
    assert db.session.scalar(select(func.count(Purchase.id)).where(Purchase.merchant_id == shop.id)) == 1
    assert db.session.scalar(select(func.count(PurchaseItem.id))) == 2
