"""A survey paid with a neighbour's certificate, in a real browser: the owner picks the reward in
the builder, a passer-by answers the poster's survey on a phone, joins, and finds the certificate."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from plugins.cross_marketing import services as certificates
from tests.browser.street import PHONE, TABLET, open_shops, sign_in
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.services import accounts

pytestmark = pytest.mark.browser


def open_street(app) -> str:
    """Café Lipa's 1,000 ₸ certificate handed out by Bakery Nan, which runs surveys; returns the bakery's slug."""
    with app.app_context():
        shops = open_shops([("Café Lipa", "cafe@example.com"), ("Bakery Nan", "bakery@example.com")],
                           ("cross_marketing", "surveys"))
        cafe, bakery = shops["Café Lipa"], shops["Bakery Nan"]
        offer = certificates.create_offer(db.session, cafe, {"face_value": "1000", "validity_days": "30"})
        partnership = certificates.invite(db.session, cafe, offer.id, bakery.id)
        certificates.respond(db.session, bakery, partnership.id, True, {"rule_min_purchase": ""})
        accounts.register_user(db.session, "aliya@example.com", PASSWORD, "Aliya Serikova")
        return bakery.slug


def test_a_passer_by_answers_a_poster_survey_joins_and_gets_the_certificate(live_app, new_page):
    slug = open_street(live_app)
    base = live_app.live_url

    # --- The owner starts from "How did we do?", adds the café's certificate to the reward, opens it.
    owner = new_page(viewport=TABLET)
    sign_in(owner, base, "bakery@example.com")
    owner.goto(f"{base}/business/{slug}/surveys/")
    owner.get_by_label("How did we do?").check()
    owner.get_by_role("button", name="Create the survey").click()
    owner.get_by_label("Reward in points").fill("20")
    reward = owner.get_by_label("Also give")
    reward.select_option(reward.locator("option", has_text="at Café Lipa").get_attribute("value"))
    owner.get_by_label("Public: anyone with the link or QR code may answer").check()
    owner.get_by_role("button", name="Save settings").click()
    expect(owner.get_by_text("The survey settings are saved.")).to_be_visible()
    owner.get_by_role("button", name="Open the survey").click()
    link = owner.locator(".surveys-public-link a").first.get_attribute("href")

    # --- A passer-by, not a member yet, answers on a phone; the reward waits for joining.
    phone = new_page(viewport=PHONE)
    sign_in(phone, base, "aliya@example.com")
    phone.goto(link)
    expect(phone.get_by_text(re.compile("Reward when you finish: 20 points \\+ Certificate for"))).to_be_visible()
    answers = phone.locator("fieldset.surveys-answer")
    answers.nth(0).get_by_label("5", exact=True).check()
    answers.nth(1).get_by_label("9", exact=True).check()
    phone.get_by_role("button", name="Send my answers").click()
    expect(phone.get_by_text(re.compile("Your reward is waiting"))).to_be_visible()

    # --- Joining pays it: 20 points on the new card and the café's certificate in the wallet.
    phone.get_by_role("link", name="Get the card").click()
    phone.get_by_role("checkbox", name=re.compile("process my name")).check()
    phone.get_by_role("button", name="Join Bakery Nan").click()
    expect(phone.get_by_role("heading", name="My wallet")).to_be_visible()
    card = phone.locator("article.wallet-card", has=phone.get_by_role("heading", name="Bakery Nan"))
    expect(card.locator(".balance")).to_have_text("20")
    card.get_by_role("link", name=re.compile("Open the card")).click()
    expect(phone.get_by_text(re.compile("Received from Bakery Nan: Survey: How did we do"))).to_be_visible()
