"""An endpoint failing for a day is switched off and its owner is told by e-mail (a real SMTP sink)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from tests.smtp import SMTPSink
from tests.webhooks.conftest import register, run_due_after
from webapp.extensions import db
from webapp.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webapp.models.base import utcnow


@pytest.fixture
def smtp():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def app_overrides(smtp):
    return {"MAIL_BACKEND": "smtp", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port}


def test_a_day_of_failures_switches_the_endpoint_off_and_mails_the_owner(
    client, make_merchant, make_member, receiver, smtp
):
    shop = make_merchant(name="Bakery")
    receiver.default_status = 500
    client.login(shop.owner)
    endpoint_id, _secret = register(client, shop, receiver.url, ["membership.created"])
    with time_machine.travel(utcnow(), tick=True) as traveller:
        started = utcnow()
        make_member(shop)
        [delivery] = db.session.scalars(select(WebhookDelivery)).all()
        while True:
            db.session.expire_all()
            endpoint = db.session.get(WebhookEndpoint, endpoint_id)
            delivery = db.session.get(WebhookDelivery, delivery.id)
            if not endpoint.enabled:
                break
            assert smtp.messages == []  # no e-mail while it has failed for less than a day
            assert delivery.status == "pending"
            wait = (delivery.next_attempt_at - utcnow()).total_seconds()
            assert run_due_after(traveller, wait) == 1
            assert utcnow() - started < timedelta(hours=36)
        assert utcnow() - started >= timedelta(hours=24)
        assert endpoint.disabled_reason == "failing" and delivery.status == "failed"
        attempts = db.session.scalars(select(WebhookAttempt)).all()
        assert len(attempts) == len(receiver.requests) >= 10
        assert all(attempt.status_code == 500 for attempt in attempts)
        # Once off, new events are not even written, and nothing is left to retry.
        make_member(shop)
        assert len(db.session.scalars(select(WebhookDelivery)).all()) == 1
        assert run_due_after(traveller, 7 * 3600) == 0
    [mail] = smtp.messages
    assert mail["To"] == shop.owner.email
    assert receiver.url in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}" in text
    page = client.get(f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}").get_data(as_text=True)
    assert "Switched off: it failed for a day" in page
    # Switched on again by the owner, it receives events again.
    receiver.default_status = 200
    assert client.post_form(f"/business/{shop.slug}/integrations/webhooks/{endpoint_id}/enable").status_code == 303
    make_member(shop)
    assert receiver.requests[-1].answered == 200
