"""A group deal in a real browser on phones: created with three tiers, joined by three customers
(one for the best price only), the progress moving without a reload, the deadline passing on an
injected clock, vouchers in the wallets, one redeemed at the till at the deal price."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from playwright.sync_api import expect

from tests.browser.street import PHONE, TABLET, open_shops, sign_in
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.services import accounts, memberships

pytestmark = pytest.mark.browser

CUSTOMERS = ("aliya@example.com", "dana@example.com", "marat@example.com")


def open_bakery(app) -> tuple[str, list[str]]:
    with app.app_context():
        bakery = open_shops([("Corner Bakery", "bakery@example.com")], ("group_deals",))["Corner Bakery"]
        cards = []
        for email in CUSTOMERS:
            person = accounts.register_user(db.session, email, PASSWORD, email.split("@")[0].title())
            memberships.join_merchant(db.session, person, bakery, consent_given=True, text_version="t")
            cards.append(person.card_code)
        return bakery.slug, cards


def test_a_group_deal_from_tiers_to_the_till(live_app, new_page):
    slug, cards = open_bakery(live_app)
    base = live_app.live_url
    deadline = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)

    # --- The owner drafts a deal with three tiers on a phone, then publishes it.
    owner = new_page(viewport=PHONE)
    sign_in(owner, base, "bakery@example.com")
    owner.goto(f"{base}/business/{slug}/deals/new")
    owner.get_by_label("Title").fill("Sourdough box")
    owner.get_by_label("Regular price per unit").fill("100")
    for number, (people, price) in enumerate(((1, "90"), (2, "80"), (4, "70")), start=1):
        owner.locator(f"#f-tier{number}_participants").fill(str(people))
        owner.locator(f"#f-tier{number}_price").fill(price)
    owner.locator("#f-tier3_price").fill("85")  # a mistake: the tiers must fall
    owner.locator("#f-deadline").fill(deadline.strftime("%Y-%m-%dT%H:%M"))
    owner.get_by_role("button", name="Save the draft").click()
    expect(owner.locator("#e-tier3")).to_contain_text("must be lower than the one before")
    owner.locator("#f-tier3_price").fill("70")
    owner.get_by_role("button", name="Save the draft").click()
    expect(owner.get_by_text("The draft is saved.")).to_be_visible()
    owner.get_by_role("button", name="Publish: customers can join, tiers freeze").click()
    expect(owner.get_by_text("The deal is published")).to_be_visible()
    owner.get_by_role("link", name="Sourdough box").click()
    deal_url = owner.url

    # --- Three customers join on their phones; Dana's page keeps polling without a reload.
    pages = []
    for email in CUSTOMERS:
        page = new_page(viewport=PHONE)
        sign_in(page, base, email)
        page.goto(deal_url)
        pages.append(page)
    aliya, dana, marat = pages
    expect(aliya.locator(".gd-sentence")).to_have_text("1 more person and the deal happens at ₸90.")
    aliya.get_by_role("button", name="Join").click()
    expect(aliya.get_by_text("You are in for 1 unit")).to_be_visible()

    dana.reload()
    expect(dana.locator(".gd-sentence")).to_have_text("1 more person and the price drops to ₸80.")
    dana.evaluate("window.gdStillHere = true")
    marat.reload()
    marat.get_by_label("Best price only").check()
    expect(marat.get_by_text("You buy only if the deal reaches its lowest price, ₸70")).to_be_visible()
    marat.get_by_role("button", name="Join").click()
    expect(marat.get_by_text("best price only.")).to_be_visible()
    # Dana's chart and sentence move on their own (htmx polls every 5 s).
    expect(dana.locator(".gd-sentence")).to_have_text("2 more people and the price drops to ₸70.", timeout=15_000)
    expect(dana.locator(".gd-count")).to_contain_text("2 people joined")
    assert dana.evaluate("window.gdStillHere") is True
    dana.get_by_role("button", name="Join").click()
    expect(dana.locator(".gd-sentence")).to_have_text("1 more person and the price drops to ₸70.")
    expect(dana.locator("svg.gd-progress line.reached")).to_have_count(2)

    # --- The deadline passes (the clock moves for the server too) and the worker's job runs.
    with time_machine.travel(deadline + timedelta(minutes=1), tick=True):
        result = live_app.test_cli_runner().invoke(args=["group_deals", "close"])
        assert "closed 1, cancelled 0" in result.output, result.output

        # Vouchers at the reached price (₸80) for Aliya and Dana; Marat, best price only, is released.
        aliya.goto(f"{base}/wallet/")  # the compact card says a voucher waits; its page shows it
        aliya.get_by_role("link", name="1 group-deal voucher to use").click()
        voucher = aliya.locator("article.gd-voucher")
        expect(voucher).to_contain_text("1 × ₸80 instead of ₸100.")
        expect(voucher.locator(".qr svg")).to_be_visible()
        expect(voucher.get_by_label("Voucher code")).to_have_text(re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z*~$=U]{1,4}){4}$"))
        marat.goto(f"{base}/wallet/")
        expect(marat.get_by_role("link", name=re.compile("group-deal voucher"))).to_have_count(0)
        marat.goto(deal_url)
        expect(marat.locator(".gd-sentence")).to_have_text("The deal closed with 3 people at ₸80 per unit.")

        # --- The cashier finds Aliya, applies her voucher, and the receipt shows the deal price.
        till = new_page(viewport=TABLET)
        sign_in(till, base, "bakery@example.com")
        till.goto(f"{base}/business/{slug}/till")
        till.get_by_label("Find the customer").fill(cards[0])
        till.get_by_role("button", name="Find customer").click()
        expect(till.locator(".checkout-lines")).to_contain_text("Group deal voucher: Sourdough box")
        till.get_by_label("Amount of the bill").fill("100")
        till.get_by_label("Use a voucher the customer holds").select_option(index=1)
        # The till prices the sale before Confirm: ₸100 less ₸20 for the voucher.
        expect(till.locator("#quote")).to_contain_text("Group deal “Sourdough box”")
        expect(till.locator("#to-collect")).to_have_text("₸80")
        till.get_by_role("button", name="Confirm purchase").click()
        expect(till.get_by_role("heading", name="Purchase recorded")).to_be_visible()
        receipt = till.locator("section.receipt")
        expect(receipt).to_contain_text("Group deal “Sourdough box”")
        expect(receipt).to_contain_text("1 × ₸80 (deal price)")

        aliya.reload()  # still on the card's page, where the voucher was shown
        expect(aliya.locator("article.gd-voucher")).to_contain_text("Used")
