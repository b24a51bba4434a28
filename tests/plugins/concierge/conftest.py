"""Fixtures for the concierge tests: a bakery with the plugin on, its cashiers and customers."""

from __future__ import annotations

import pytest

from webapp.extensions import db
from webapp.plugins import registry
from webapp.services import merchants as merchant_service


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.concierge"]}


def enable(merchant, on: bool = True) -> None:
    merchant_service.set_plugin_enabled(
        db.session, registry(), merchant, "concierge", on, merchant.owner
    )


@pytest.fixture
def cashier(make_user):
    return make_user(name="Bakery Cashier")


@pytest.fixture
def shop(make_merchant, cashier):
    merchant = make_merchant(name="Corner Bakery", cashiers=[cashier])
    enable(merchant)
    return merchant


def sent_mail(app) -> list:
    return list(getattr(app.extensions["mailman"], "outbox", []))
