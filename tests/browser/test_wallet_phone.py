"""The phone wallet of a demo customer with two cards at shops with every plugin on stays short:
a compact summary per card, the details on the card's own page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.browser.street import PHONE
from webapp import demo
from webapp.extensions import db
from webapp.models import Membership, Merchant, User

pytestmark = pytest.mark.browser

# About two phone screens (844 px each, minus the browser's own bars).
MAX_WALLET_HEIGHT = 1700


def two_card_customer(app) -> tuple[str, list[int]]:
    """The demo street (small), and a customer whose only two cards are at shops with every plugin on."""
    with app.app_context():
        demo.load(echo=lambda line: None, customers=30, purchases=200)
        plugin_shops = db.session.scalars(
            select(Merchant.id).order_by(Merchant.id).limit(demo.PLUGIN_MERCHANTS)
        ).all()
        cards = (
            select(Membership.user_id)
            .group_by(Membership.user_id)
            .having(func.count() == 2)
            .having(func.sum(Membership.merchant_id.in_(plugin_shops).cast(db.Integer)) == 2)
        )
        user = db.session.scalars(select(User).where(User.id.in_(cards)).order_by(User.id)).first()
        assert user is not None, "the demo has a customer with two cards at plugin shops"
        membership_ids = db.session.scalars(
            select(Membership.id).where(Membership.user_id == user.id).order_by(Membership.id)
        ).all()
        return user.email, membership_ids


def sign_in_demo(page, base: str, email: str) -> None:
    page.goto(f"{base}/auth/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(demo.DEMO_PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def test_phone_wallet_with_two_cards_and_every_plugin_fits_two_screens(live_app, new_page):
    email, membership_ids = two_card_customer(live_app)
    page = new_page(viewport=PHONE)
    sign_in_demo(page, live_app.live_url, email)
    page.goto(f"{live_app.live_url}/wallet/")
    cards = page.locator("article.wallet-card")
    expect(cards).to_have_count(2)
    height = page.evaluate("document.documentElement.scrollHeight")
    print(f"phone wallet height: {height} px")
    assert height <= MAX_WALLET_HEIGHT, f"the phone wallet is {height} px tall"
