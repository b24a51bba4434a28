"""Webhooks end to end: the owner's pages, Standard Webhooks deliveries checked by the independent
``standardwebhooks`` package at a real receiver, retries with backoff and the attempt log, secret
rotation, "send again", tenant isolation, and events from the real till and the real API."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from tests.api.test_api import auth, new_key
from tests.conftest import form_status
from tests.webhooks.conftest import register, run_due_after
from webapp.extensions import db
from webapp.models import OutboxMessage, Purchase, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webapp.models.base import utcnow
from webapp.services import webhooks

CORE_EVENTS = ["purchase.recorded", "purchase.refunded", "membership.created"]


@pytest.fixture
def shop(make_merchant, make_user):
    cashier = make_user(name="Cashier")
    merchant = make_merchant(name="Bakery", cashiers=[cashier])
    merchant.cashier = cashier
    return merchant


def deliveries(**where) -> list[WebhookDelivery]:
    db.session.expire_all()
    query = select(WebhookDelivery).order_by(WebhookDelivery.id)
    for name, value in where.items():
        query = query.where(getattr(WebhookDelivery, name) == value)
    return list(db.session.scalars(query))


def attempts_of(delivery_id: int) -> list[WebhookAttempt]:
    return list(db.session.scalars(
        select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.id)
    ))


def till_sale(client, shop, member, amount="100", key=None):
    form = {"membership_id": member.id, "amount": amount, "points": "0",
            "idempotency_key": key or uuid.uuid4().hex}
    response = client.post_form(f"/business/{shop.slug}/till/purchase", form, htmx=True)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response


# --------------------------------------------------------------------------- the owner's pages


def test_the_owner_registers_an_endpoint_and_sees_its_secret_once(client, shop, receiver):
    client.login(shop.owner)
    assert client.get(f"/business/{shop.slug}/integrations").status_code == 200
    listing = client.get(f"/business/{shop.slug}/integrations/webhooks").get_data(as_text=True)
    for name in CORE_EVENTS:
        assert f'value="{name}"' in listing
    page = client.post_form(f"/business/{shop.slug}/integrations/webhooks",
                            {"url": receiver.url, "events": ["purchase.recorded"]})
    assert page.status_code == 201 and page.headers["Cache-Control"] == "no-store"
    secret = re.search(r'class="webhook-secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
    stored = db.session.scalar(select(WebhookEndpoint))
    assert stored.url == receiver.url and stored.events == ["purchase.recorded"] and stored.enabled
    assert secret not in stored.secret_sealed and secret[6:] not in stored.secret_sealed
    assert webhooks.unseal_secret(stored.secret_sealed) == secret  # sealed, not hashed: it must sign
    for url in (f"/business/{shop.slug}/integrations/webhooks",
                f"/business/{shop.slug}/integrations/webhooks/{stored.id}"):
        text = client.get(url).get_data(as_text=True)
        assert receiver.url in text and secret not in text


@pytest.mark.parametrize(("url", "events", "message"), [
    ("", ["purchase.recorded"], "Enter the address"),
    ("ftp://example.com/hook", ["purchase.recorded"], "must start with https://"),
    ("http://user:pw@127.0.0.1/hook", ["purchase.recorded"], "user name or password"),
    ("http://127.0.0.1:99999/hook", ["purchase.recorded"], "not a valid web address"),
    ("http://127.0.0.1/hook", [], "Choose at least one"),
    ("http://127.0.0.1/hook", ["purchase.recorded", "deal.exploded"], "Choose at least one"),
])
def test_bad_forms_get_a_clear_message_and_nothing_is_stored(client, shop, url, events, message):
    client.login(shop.owner)
    page = client.post_form(f"/business/{shop.slug}/integrations/webhooks", {"url": url, "events": events})
    assert page.status_code == 422
    assert message in page.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_another_merchants_endpoint_pages_answer_404_and_change_nothing(client, shop, make_merchant, receiver):
    client.login(shop.owner)
    endpoint_id, _secret = register(client, shop, receiver.url, CORE_EVENTS)
    other = make_merchant(name="Car wash")
    client.login(other.owner)
    base = f"/business/{other.slug}/integrations/webhooks/{endpoint_id}"
    assert client.get(base).status_code == 404
    for action in ("rotate", "disable", "enable", "delete", "deliveries/1/resend"):
        assert client.post_form(f"{base}/{action}").status_code == 404, action
    # The merchant's own pages are closed to the other owner altogether.
    assert client.get(f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}").status_code == 404
    assert client.get(f"/business/{shop.slug}/integrations/webhooks").status_code == 404
    db.session.expire_all()
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    assert endpoint is not None and endpoint.enabled and endpoint.previous_secret_sealed is None
    assert receiver.url not in client.get(f"/business/{other.slug}/integrations/webhooks").get_data(as_text=True)


def test_a_cashier_cannot_open_the_webhook_pages(client, shop, receiver):
    client.login(shop.owner)
    endpoint_id, _secret = register(client, shop, receiver.url, CORE_EVENTS)
    client.login(shop.cashier)
    assert client.get(f"/business/{shop.slug}/integrations/webhooks").status_code == 404
    assert client.get(f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}").status_code == 404


# --------------------------------------------------------------------------- deliveries


def test_the_till_and_the_api_each_produce_one_verified_delivery_per_subscribed_endpoint(
    client, shop, make_member, receiver
):
    client.login(shop.owner)
    everything_id, everything = register(client, shop, receiver.url + "?all", CORE_EVENTS)
    sales_id, sales = register(client, shop, receiver.url + "?sales", ["purchase.recorded"])
    receiver.secrets.extend([everything, sales])
    member = make_member(shop)  # membership.created
    client.login(shop.cashier)
    till_sale(client, shop, member, key="till-1")
    till_sale(client, shop, member, key="till-1")  # Confirm pressed twice: one sale
    api_key = new_key(shop)
    body = {"membership_id": member.id, "amount": 25000, "points_to_use": 0}
    first = client.post("/api/v1/purchases", json=body, headers=auth(api_key, "pos-1"))
    again = client.post("/api/v1/purchases", json=body, headers=auth(api_key, "pos-1"))  # a lost answer, retried
    assert first.status_code == 201 and again.get_json() == first.get_json()
    refund = client.post(f"/api/v1/purchases/{first.get_json()['id']}/refund", headers=auth(api_key, "ref-1"))
    assert refund.status_code == 200
    assert client.post(f"/api/v1/purchases/{first.get_json()['id']}/refund",
                       headers=auth(api_key, "ref-1")).status_code == 200
    assert db.session.scalar(select(func.count(Purchase.id))) == 2

    def seen(path_query: str, event: str) -> list:
        return [r for r in receiver.of_type(event) if r.path.endswith(path_query)]

    assert [len(seen("?all", event)) for event in CORE_EVENTS] == [2, 1, 1]
    assert [len(seen("?sales", event)) for event in CORE_EVENTS] == [1 * 2, 0, 0]
    assert len(receiver.requests) == 6
    for request in receiver.requests:
        expected = everything if request.path.endswith("?all") else sales
        assert request.verified_with == [expected], request.headers  # only its own endpoint's key
        assert request.answered == 200
        assert request.headers["content-type"] == "application/json"
        assert set(request.payload) == {"type", "timestamp", "data"}
    assert len({request.message_id for request in receiver.requests}) == 6  # ids unique
    recorded = {r.payload["data"]["id"] for r in seen("?all", "purchase.recorded")}
    assert recorded == set(db.session.scalars(select(Purchase.id)))
    [refunded] = seen("?all", "purchase.refunded")
    assert refunded.payload["data"]["id"] == first.get_json()["id"]
    assert refunded.payload["data"]["refunded_at"] is not None
    assert seen("?all", "membership.created")[0].payload["data"]["id"] == member.id
    # Each delivery is logged once, delivered, with the receiver's answer.
    for delivery in deliveries():
        [attempt] = attempts_of(delivery.id)
        assert delivery.status == "succeeded" and attempt.status_code == 200
        assert attempt.response_excerpt == '{"received": true}'
    assert {d.endpoint_id for d in deliveries()} == {everything_id, sales_id}


def test_an_event_that_rolls_back_writes_no_delivery(client, shop, make_member, receiver):
    client.login(shop.owner)
    register(client, shop, receiver.url, CORE_EVENTS)
    member = make_member(shop)
    receiver.requests.clear()
    client.login(shop.cashier)
    form = {"membership_id": member.id, "amount": "100", "points": "500", "idempotency_key": "no-points"}
    declined = client.post_form(f"/business/{shop.slug}/till/purchase", form, htmx=True)
    assert form_status(declined) in (409, 422)  # more points than the card has
    assert deliveries(event="purchase.recorded") == [] and receiver.requests == []


def test_500_three_times_then_success_retries_with_backoff_and_the_log_matches(
    client, shop, make_member, receiver
):
    client.login(shop.owner)
    endpoint_id, secret = register(client, shop, receiver.url, ["membership.created"])
    receiver.secrets.append(secret)
    receiver.statuses = [500, 500, 500]
    with time_machine.travel(utcnow(), tick=True) as traveller:
        make_member(shop)
        [delivery] = deliveries()
        assert [r.answered for r in receiver.requests] == [500]
        assert delivery.status == "pending" and delivery.attempts == 1
        gaps = []
        while deliveries()[0].status == "pending":
            before = deliveries()[0]
            gaps.append((before.next_attempt_at - before.last_attempt_at).total_seconds())
            assert run_due_after(traveller, gaps[-1] - 2, grace=False) == 0  # not before its time
            assert run_due_after(traveller, 2) == 1
            assert len(gaps) < 10
    assert gaps == [15, 60, 240]  # exponential backoff
    assert [r.answered for r in receiver.requests] == [500, 500, 500, 200]
    assert len({r.message_id for r in receiver.requests}) == 1  # one message, retried
    assert len({r.headers["webhook-timestamp"] for r in receiver.requests}) == 4  # signed per attempt
    assert all(r.verified_with == [secret] for r in receiver.requests)
    [delivery] = deliveries()
    logged = attempts_of(delivery.id)
    assert delivery.status == "succeeded" and delivery.attempts == 4
    assert [a.status_code for a in logged] == [r.answered for r in receiver.requests]
    assert [int(a.attempted_at.timestamp()) for a in logged] == [
        int(r.headers["webhook-timestamp"]) for r in receiver.requests
    ]
    assert all(a.latency_ms >= 0 and a.error is None for a in logged)
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint_id).failing_since is None
    page = client.get(f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}").get_data(as_text=True)
    assert re.findall(r'class="webhook-attempt" data-status="(\d+)"', page) == ["200", "500", "500", "500"]
    assert delivery.message_id in page


def test_send_again_repeats_the_message_with_its_id_and_logs_it(client, shop, make_member, receiver):
    client.login(shop.owner)
    endpoint_id, secret = register(client, shop, receiver.url, ["membership.created"])
    receiver.secrets.append(secret)
    make_member(shop)
    [delivery] = deliveries()
    response = client.post_form(
        f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}/deliveries/{delivery.id}/resend"
    )
    assert response.status_code == 303
    assert [r.message_id for r in receiver.requests] == [delivery.message_id] * 2
    assert receiver.requests[0].body == receiver.requests[1].body
    assert all(r.verified_with == [secret] for r in receiver.requests)
    assert [a.manual for a in attempts_of(delivery.id)] == [False, True]
    page = client.get(f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}").get_data(as_text=True)
    assert "sent again" in page


def test_rotation_signs_with_the_new_key_and_the_old_one_only_for_a_day(client, shop, make_member, receiver):
    client.login(shop.owner)
    endpoint_id, old = register(client, shop, receiver.url, ["membership.created"])
    receiver.secrets.append(old)
    make_member(shop)
    page = client.post_form(f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}/rotate")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    new = re.search(r'class="webhook-secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    assert new != old and new.startswith("whsec_")
    receiver.secrets.append(new)
    with time_machine.travel(utcnow(), tick=True) as traveller:
        make_member(shop)
        traveller.shift(timedelta(hours=25))
        make_member(shop)
    first, during, after = receiver.requests
    assert first.verified_with == [old]
    assert during.verified_with == [old, new]  # both signatures while receivers switch over
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert after.verified_with == [new]  # the old key no longer signs
    assert len(after.headers["webhook-signature"].split(" ")) == 1


def test_switched_off_or_deleted_endpoints_get_nothing(client, shop, make_member, receiver):
    client.login(shop.owner)
    endpoint_id, _secret = register(client, shop, receiver.url, ["membership.created"])
    base = f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}"
    assert client.post_form(f"{base}/disable").status_code == 303
    make_member(shop)
    assert receiver.requests == [] and deliveries() == []
    assert client.post_form(f"{base}/enable").status_code == 303
    make_member(shop)
    assert len(receiver.requests) == 1
    assert client.post_form(f"{base}/delete").status_code == 303
    assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
    assert deliveries() == [] and db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 0
    make_member(shop)
    assert len(receiver.requests) == 1
    assert client.get(base).status_code == 404


def test_a_queue_that_is_down_loses_no_delivery(client, shop, make_member, receiver, monkeypatch):
    client.login(shop.owner)
    register(client, shop, receiver.url, ["membership.created"])
    from webapp import tasks

    def queue_down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(tasks, "run_outbox_messages", queue_down)
    make_member(shop)
    assert receiver.requests == []
    [delivery] = deliveries()
    assert delivery.status == "pending"
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.kind == "webhook", OutboxMessage.done_at.is_(None))) == 1
    monkeypatch.undo()
    with time_machine.travel(utcnow(), tick=True) as traveller:
        assert run_due_after(traveller, 0) == 1
    assert len(receiver.requests) == 1 and deliveries()[0].status == "succeeded"


def test_the_webhook_pages_speak_russian(client, shop, receiver):
    client.login(shop.owner)
    client.post_form("/account/locale", {"locale": "ru", "next": "/"})
    listing = client.get(f"/business/{shop.slug}/integrations/webhooks").get_data(as_text=True)
    assert "Вебхуки" in listing and "Записана продажа" in listing and "Добавить адрес" in listing
    refused = client.post_form(f"/business/{shop.slug}/integrations/webhooks",
                               {"url": "ftp://x", "events": ["purchase.recorded"]})
    assert "Адрес должен начинаться с https://." in refused.get_data(as_text=True)
    endpoint_id, _secret = register(client, shop, receiver.url, ["purchase.recorded"])
    page = client.get(f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}").get_data(as_text=True)
    assert "Секрет подписи" not in page and "Новый секрет подписи" in page


def test_settled_deliveries_leave_the_log_after_thirty_days(client, shop, make_member, receiver):
    client.login(shop.owner)
    register(client, shop, receiver.url, ["membership.created"])
    make_member(shop)
    receiver.default_status = 500
    make_member(shop)  # still being retried: kept however old
    assert [d.status for d in deliveries()] == ["succeeded", "pending"]
    assert webhooks.purge_old(db.session, utcnow() + timedelta(days=29)) == 0
    assert webhooks.purge_old(db.session, utcnow() + timedelta(days=31)) == 1
    assert [d.status for d in deliveries()] == ["pending"]
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 1
