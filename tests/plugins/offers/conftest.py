"""Fixtures for the offers tests: a café with the plugin on, members with a purchase history."""

from __future__ import annotations

import pytest

from tests import kit
from tests.kit import enable_plugins
from webapp.extensions import db
from webapp.services.purchases import lines_total, priced_lines

SECRET = "offers-test-secret"


@pytest.fixture
def app_overrides():
    # Only the plugins these tests need: other plugins cannot change what is measured here.
    return {"PLUGINS": ["plugins.news", "plugins.offers"]}


@pytest.fixture
def shop(make_merchant):
    merchant = make_merchant(name="Corner Café")
    enable_plugins(merchant, "offers")
    return merchant


def buy(merchant, membership, amount: int = 50_000, when=None, picks=None, **sale):
    """A sale of ``amount``, or of the price-list items ``picks`` [(item id, quantity)]."""
    if not picks:
        return kit.buy(merchant, membership, amount, when=when, **sale)
    lines = priced_lines(db.session, merchant, picks)
    return kit.buy(merchant, membership, lines_total(lines), when=when, lines=lines, **sale)
