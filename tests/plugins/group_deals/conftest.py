"""Fixtures for the group_deals tests: a bakery with the plugin on, its members, deals in a few lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plugins.group_deals import services
from tests import kit
from tests.kit import enable_plugins
from webapp.extensions import db

# The deal's clock: services take ``now``, so deadlines pass when a test says so. The deadline
# lies a week back, so vouchers (14 days) are still valid at the till's real clock today.
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
DEADLINE = NOW + timedelta(days=3)
AFTER = DEADLINE + timedelta(minutes=1)


@pytest.fixture
def app_overrides():
    # Only the plugins these tests need: other plugins cannot change what is measured here.
    return {"PLUGINS": ["plugins.news", "plugins.group_deals"]}


@pytest.fixture
def shop(make_merchant, make_user):
    merchant = make_merchant(name="Corner Bakery", cashiers=[make_user(name="Bakery Cashier")])
    enable_plugins(merchant, "group_deals")
    return merchant


def make_deal(merchant, tiers=((3, 9000), (5, 8000), (8, 7000)), regular=10000, max_participants=None,
              max_quantity=3, deadline=DEADLINE, redeem_days=14, publish=True, now=NOW):
    data = services.DealInput(
        title="Sourdough box", description="Three loaves a week.", regular_price=regular,
        tiers=tuple(services.TierStep(people, price) for people, price in tiers),
        max_participants=max_participants, max_quantity=max_quantity, deadline=deadline,
        redeem_days=redeem_days,
    )
    deal = services.create_draft(db.session, merchant, data)
    if publish:
        deal = services.publish(db.session, merchant, deal.id, now)
    return deal


def buy(merchant, membership, amount: int = 50_000, key: str | None = None, **options):
    return kit.buy(merchant, membership, amount, key=key, **options)
