"""Surveys in a real browser: built from a template, answered on a phone after a purchase, a complaint answered."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.street import PHONE, TABLET, open_shops, sign_in
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.services import accounts, memberships

pytestmark = pytest.mark.browser


def open_bakery(app) -> tuple[str, str]:
    """A bakery with the surveys plugin on and one customer who agreed to marketing e-mail."""
    with app.app_context():
        shop = open_shops([("Bakery Nan", "bakery@example.com")], ("surveys",))["Bakery Nan"]
        customer = accounts.register_user(db.session, "aliya@example.com", PASSWORD, "Aliya Serikova")
        memberships.join_merchant(db.session, customer, shop, consent_given=True, text_version="t",
                                  marketing_consent=True)
        return shop.slug, customer.card_code



def balance(page: Page) -> int:
    return int(re.sub(r"\D", "", page.locator("p.balance").first.inner_text()))


def test_survey_from_a_template_answered_on_a_phone_and_a_complaint_answered(live_app, new_page):
    slug, card = open_bakery(live_app)
    base = live_app.live_url

    # --- The owner builds a two-question survey from "How did we do?" (htmx, no reloads).
    owner = new_page(viewport=TABLET)
    owner.on("dialog", lambda dialog: dialog.accept())
    sign_in(owner, base, "bakery@example.com")
    owner.goto(f"{base}/business/{slug}/surveys/")
    owner.get_by_label("How did we do?").check()
    owner.get_by_role("button", name="Create the survey").click()
    questions = owner.locator("#survey-questions li.surveys-question")
    expect(questions).to_have_count(3)
    owner.get_by_role("button", name="Remove What could we do better?").click()
    expect(questions).to_have_count(2)
    owner.get_by_label("Reward in points").fill("50")
    owner.get_by_role("button", name="Save settings").click()
    expect(owner.get_by_text("The survey settings are saved.")).to_be_visible()
    owner.get_by_role("button", name="Open the survey").click()
    expect(owner.get_by_text("The survey is open")).to_be_visible()

    # --- A purchase at the till: the receipt offers "rate this visit"; the invitation follows.
    owner.goto(f"{base}/business/{slug}/till")
    owner.get_by_label("Find the customer").fill(card)
    owner.get_by_role("button", name="Find customer").click()
    owner.get_by_label("Amount of the bill").fill("3000")
    owner.get_by_role("button", name="Confirm purchase").click()
    expect(owner.get_by_role("heading", name="Purchase recorded")).to_be_visible()
    expect(owner.locator(".surveys-receipt")).to_contain_text("Rate this visit")

    # --- Aliya answers on her phone: a missing answer is named, then the points arrive.
    phone = new_page(viewport=PHONE)
    sign_in(phone, base, "aliya@example.com")
    before = balance(phone)
    phone.get_by_role("link", name=re.compile("Answer “How did we do\\?”")).click()
    expect(phone.get_by_role("heading", name="How did we do?")).to_be_visible()
    first = phone.locator("fieldset.surveys-answer").nth(0)
    second = phone.locator("fieldset.surveys-answer").nth(1)
    first.get_by_label("5", exact=True).check()
    phone.get_by_role("button", name="Send my answers").click()
    expect(second.locator(".error")).to_have_text("Please answer this question.")
    phone.locator("fieldset.surveys-answer").nth(1).get_by_label("9", exact=True).check()
    phone.get_by_role("button", name="Send my answers").click()
    expect(phone.locator(".surveys-done")).to_contain_text("points are on your card")
    phone.goto(f"{base}/wallet/")
    assert balance(phone) == before + 50

    # --- She rates the visit 1 star: a complaint opens.
    phone.get_by_role("link", name="Rate this visit").first.click()
    phone.get_by_label("1", exact=True).check()
    phone.get_by_label("Comment (optional)").fill("The bread was stale")
    phone.get_by_role("button", name="Send my rating").click()
    expect(phone.get_by_text("has been told and will answer you here")).to_be_visible()

    # --- The owner sees the badge, answers in the thread.
    owner.goto(f"{base}/business/{slug}/dashboard")
    owner.locator(".surveys-badge").click()
    owner.get_by_role("link", name=re.compile(r"\d")).filter(has_text=re.compile(r"\d")).first.click()
    expect(owner.get_by_text("The bread was stale")).to_be_visible()
    owner.get_by_label("Your answer").fill("We are sorry! Come by for a fresh loaf on us.")
    owner.get_by_role("button", name="Send the answer").click()
    expect(owner.get_by_text("Your answer is sent.")).to_be_visible()
    expect(owner.get_by_text(re.compile("First answered after"))).to_be_visible()

    # --- Aliya sees the answer from her wallet.
    phone.goto(f"{base}/wallet/")
    phone.get_by_role("link", name="The business answered your complaint").click()
    expect(phone.get_by_text("Come by for a fresh loaf on us.")).to_be_visible()
