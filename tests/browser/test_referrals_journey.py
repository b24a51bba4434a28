"""Referrals and levels in a real browser: a shared link, a friend joins and buys, the referrer climbs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from plugins.gamification import services as levels
from tests.browser.street import PHONE, TABLET, open_shops, sign_in
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import MerchantPlugin, User
from webapp.services import accounts, memberships

pytestmark = pytest.mark.browser


def open_cafe(app) -> tuple[str, str]:
    """Café Lipa with referrals (10% on a friend's purchases) and levels earned by friends who buy."""
    with app.app_context():
        cafe = open_shops([("Café Lipa", "cafe@example.com")], ("referrals", "gamification"))["Café Lipa"]
        for name, settings in (("referrals", {"level1_bp": 1000}), ("gamification", {"basis": "referrals"})):
            row = db.session.scalar(select(MerchantPlugin).where(
                MerchantPlugin.merchant_id == cafe.id, MerchantPlugin.plugin_name == name))
            row.settings = {**(row.settings or {}), **settings}
            db.session.commit()
        levels.save_levels(db.session, cafe, [
            ("New", 0, 500), ("Regular", 1, 600), ("Silver", 2, 700), ("Gold", 3, 850), ("VIP", 5, 1000),
        ])
        aliya = accounts.register_user(db.session, "aliya@example.com", PASSWORD, "Aliya Serikova")
        accounts.register_user(db.session, "dana@example.com", PASSWORD, "Dana Omarova")
        memberships.join_merchant(db.session, aliya, cafe, consent_given=True, text_version="t")
        dana = db.session.scalar(select(User).where(User.email == "dana@example.com"))
        return cafe.slug, dana.card_code



def test_friend_joins_by_link_buys_and_the_referrer_climbs(live_app, new_page):
    slug, dana_card = open_cafe(live_app)
    base = live_app.live_url

    # --- Aliya finds her personal link on her card, with the rules in plain words.
    aliya = new_page(viewport=PHONE)
    sign_in(aliya, base, "aliya@example.com")
    aliya.get_by_role("link", name="Bring a friend").click()
    card = aliya.locator(".referrals-card")
    expect(card).to_contain_text("Rewards stop after three steps")
    link = card.get_by_label("Your link").input_value()
    assert "/r/" in link
    expect(aliya.locator(".gamification-card")).to_contain_text("Your level: New")
    expect(aliya.locator(".gamification-card .progress-words")).to_contain_text(re.compile(r"Bring 1 more friend.*Regular"))

    # --- Dana opens the link, signs in and joins: she is linked to Aliya.
    dana = new_page(viewport=PHONE)
    dana.goto(link)
    dana.get_by_role("link", name="I have an account: sign in").click()
    dana.get_by_label("E-mail").fill("dana@example.com")
    dana.get_by_label("Password").fill(PASSWORD)
    dana.get_by_role("button", name="Sign in").click()
    dana.locator("#f-consent").check()
    dana.get_by_role("button", name="Join Café Lipa").click()
    expect(dana.get_by_role("heading", name="My wallet")).to_be_visible()

    # --- The cashier records Dana's 5,000 ₸ purchase.
    till = new_page(viewport=TABLET)
    sign_in(till, base, "cafe@example.com")
    till.goto(f"{base}/business/{slug}/till")
    till.get_by_label("Find the customer").fill(dana_card)
    till.get_by_role("button", name="Find customer").click()
    till.get_by_label("Amount of the bill").fill("5000")
    till.get_by_role("button", name="Confirm purchase").click()
    expect(till.get_by_role("heading", name="Purchase recorded")).to_be_visible()

    # --- Aliya sees the reward, her friend, the level-up message and the progress toward Silver.
    aliya.goto(f"{base}/wallet/")
    expect(aliya.locator(".card-summary")).to_contain_text("Level Regular")
    aliya.get_by_role("link", name=re.compile("Open the card")).click()
    expect(aliya.locator(".level-up")).to_contain_text("You reached Regular")
    expect(aliya.locator(".gamification-card")).to_contain_text("Your level: Regular")
    expect(aliya.locator(".gamification-card .progress-words")).to_contain_text("Silver")
    expect(aliya.locator(".referrals-card")).to_contain_text("Friends you brought: Dana")
    expect(aliya.locator(".referral-earned")).to_contain_text("You earned 5,000 points from referrals.")
    aliya.goto(f"{base}/wallet/")
    expect(aliya.locator(".card-summary")).to_contain_text("Level Regular")
    aliya.get_by_role("link", name=re.compile("Open the card")).click()
    expect(aliya.locator(".level-up")).to_have_count(0)
