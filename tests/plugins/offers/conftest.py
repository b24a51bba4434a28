"""Fixtures for the offers tests: a café with the plugin on, members with a purchase history."""

from __future__ import annotations

import pytest

from tests import kit
from tests.kit import enable_plugins

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


def buy(merchant, membership, amount: int = 50_000, when=None, **sale):
    return kit.buy(merchant, membership, amount, when=when, **sale)
