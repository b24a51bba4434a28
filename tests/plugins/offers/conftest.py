"""Fixtures for the offers tests: a café with the plugin on, members with a purchase history."""

from __future__ import annotations

import uuid

import pytest

from webapp.extensions import db
from webapp.plugins import registry
from webapp.services import merchants as merchant_service
from webapp.services.purchases import PurchaseDraft, lines_total, priced_lines, record_purchase

SECRET = "offers-test-secret"


@pytest.fixture
def app_overrides():
    # Only the plugins these tests need: other plugins cannot change what is measured here.
    return {"PLUGINS": ["plugins.news", "plugins.offers"]}


def enable(merchant, on: bool = True) -> None:
    merchant_service.set_plugin_enabled(
        db.session, registry(), merchant, "offers", on, merchant.owner
    )


@pytest.fixture
def shop(make_merchant):
    merchant = make_merchant(name="Corner Café")
    enable(merchant)
    return merchant


def buy(merchant, membership, amount: int = 50_000, when=None, picks=None):
    """A sale of ``amount``, or of the price-list items ``picks`` [(item id, quantity)]."""
    lines = priced_lines(db.session, merchant, picks) if picks else ()
    draft = PurchaseDraft(
        membership_id=membership.id,
        amount=lines_total(lines) if lines else amount,
        points_to_use=0,
        idempotency_key=uuid.uuid4().hex,
        created_at=when,
        lines=lines,
    )
    return record_purchase(db.session, merchant, membership, draft).purchase
