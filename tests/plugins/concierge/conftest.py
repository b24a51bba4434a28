"""Fixtures for the concierge tests: a bakery with the plugin on, its cashiers and customers."""

from __future__ import annotations

import pytest

from tests.kit import enable_plugins


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.concierge"]}


@pytest.fixture
def cashier(make_user):
    return make_user(name="Bakery Cashier")


@pytest.fixture
def shop(make_merchant, cashier):
    merchant = make_merchant(name="Corner Bakery", cashiers=[cashier])
    enable_plugins(merchant, "concierge")
    return merchant


def sent_mail(app) -> list:
    return list(getattr(app.extensions["mailman"], "outbox", []))
