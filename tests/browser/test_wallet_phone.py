"""The phone wallet of a demo customer with two cards at shops with every plugin on stays short:
a compact summary per card, the details on the card's own page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

import neighbourly_demo as demo
from tests.browser.street import PHONE
from tests.demo_people import load_demo_people

pytestmark = pytest.mark.browser

# About two phone screens (844 px each, minus the browser's own bars). Before the compact cards
# this wallet measured 5,769 px.
MAX_WALLET_HEIGHT = 1700


def sign_in_demo(page, base: str, email: str) -> None:
    page.goto(f"{base}/auth/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(demo.DEMO_PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def test_phone_wallet_with_two_cards_and_every_plugin_fits_two_screens(live_app, new_page):
    with live_app.app_context():
        people = load_demo_people()
    page = new_page(viewport=PHONE)
    sign_in_demo(page, live_app.live_url, people.customer_email)
    page.goto(f"{live_app.live_url}/wallet/")
    expect(page.locator("article.wallet-card")).to_have_count(2)
    expect(page.locator(".card-summary").first).to_be_visible()
    height = page.evaluate("document.documentElement.scrollHeight")
    print(f"phone wallet height: {height} px")
    assert height <= MAX_WALLET_HEIGHT, f"the phone wallet is {height} px tall"
    # The details are one tap away: the card's page has the plugins' panels and the history.
    page.locator("article.wallet-card").first.locator(".card-open a").click()
    expect(page.locator(".wallet-panels")).to_be_visible()
    expect(page.locator("#card-history")).to_be_visible()


def test_certificates_and_card_pages_fit_a_phone_without_sideways_scrolling(live_app, new_page):
    with live_app.app_context():
        people = load_demo_people()
    page = new_page(viewport=PHONE)
    sign_in_demo(page, live_app.live_url, people.customer_email)
    for path in ("/wallet/", f"/wallet/cards/{people.membership_ids[0]}", "/certificates/"):
        page.goto(live_app.live_url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide on a {PHONE['width']} px phone"
    # One certificate's own page, with its QR code, too.
    hrefs = page.eval_on_selector_all("a[href^='/certificates/']", "links => links.map(a => a.getAttribute('href'))")
    own = [href for href in hrefs if href.rstrip("/").split("/")[-1].isdigit()]
    assert own, hrefs
    page.goto(live_app.live_url + own[0])
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"
