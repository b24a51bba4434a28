"""Fixtures for the letters plugin: a real SMTP sink, a shop with the plugin on, customers."""

from __future__ import annotations

import pytest

from tests import kit
from tests.kit import enable_plugins
from tests.smtp import SMTPSink
from webapp.extensions import db
from webapp.plugins import registry
from webapp.services import memberships
from webapp.services import merchants as merchant_service


@pytest.fixture
def smtp():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def app_overrides(smtp):
    return {"MAIL_BACKEND": "smtp", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port}


def set_letters(merchant, **settings) -> None:
    meta = registry().meta("letters")
    form = {spec.name: spec.default for spec in meta.settings}
    form.update(settings)
    form = {key: ("on" if value is True else "" if value is False else str(value)) for key, value in form.items()}
    merchant_service.save_plugin_settings(db.session, registry(), merchant, "letters", form, merchant.owner)


@pytest.fixture
def shop(make_merchant):
    merchant = make_merchant(name="Corner Bakery")
    enable_plugins(merchant, "letters")
    return merchant


@pytest.fixture
def customer(shop, make_user, make_member):
    """A member who agreed to marketing messages."""
    user = make_user(name="Aigerim Sadykova", email="aigerim@example.com")
    membership = make_member(shop, user=user)
    memberships.grant_consent(db.session, user, shop, memberships.MARKETING, "test")
    return membership


def buy(merchant, membership, amount: int = 450000):
    return kit.buy(merchant, membership, amount, cashier=merchant.owner)
