"""Webhook test helpers: a receiver on loopback, endpoints registered through the owner's page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.webhooks.receiver import Receiver
from webapp import outbox
from webapp.extensions import db


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def register(client, merchant, url: str, events: list[str]) -> tuple[int, str]:
    """Register an endpoint as the signed-in owner; (endpoint id, the secret shown once)."""
    page = client.post_form(f"/business/{merchant.slug}/integrations/webhooks", {"url": url, "events": events})
    text = page.get_data(as_text=True)
    assert page.status_code == 201, text[:2000]
    secret = re.search(r'class="webhook-secret">([^<]+)<', text).group(1)
    endpoint_id = int(re.search(r"/integrations/webhooks/(\d+)/rotate", text).group(1))
    return endpoint_id, secret


def run_due_after(traveller, seconds: float, grace: bool = True) -> int:
    """Move the clock on (past the relay's grace for fresh rows, unless told not to) and run what
    the outbox relay finds due, as the worker's periodic job does."""
    extra = outbox.RELAY_GRACE.total_seconds() + 1 if grace else 0
    traveller.shift(timedelta(seconds=seconds + extra))
    return outbox.relay_due(db.session, run_here=True)
