"""The till when the server cannot be reached: the sale's request is lost once, the cashier sees a
banner saying the sale may not have been recorded, presses Confirm again, and one sale is recorded."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.browser.street import TABLET
from tests.browser.test_core_journey import cashier_opens_till, open_shop
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import Merchant, Purchase
from webapp.services import accounts, memberships

pytestmark = pytest.mark.browser

BANNER = ("We could not reach the server; the sale may not have been recorded. Press Confirm again: "
          "it will not be recorded twice.")


def test_a_lost_request_shows_the_banner_and_confirming_again_records_one_sale(live_app, new_page):
    shop = open_shop(live_app)
    with live_app.app_context():
        customer = accounts.register_user(db.session, "aliya@example.com", PASSWORD, "Aliya S.")
        memberships.join_merchant(db.session, customer, db.session.get(Merchant, shop.id),
                                  consent_given=True, text_version="test")
        card_code = customer.card_code
        db.session.remove()
    till = new_page(viewport=TABLET, expected_errors=("net::ERR_FAILED", "htmx:sendError", "htmx:afterRequest"))
    cashier_opens_till(till, live_app.live_url, shop)
    till.get_by_label("Find the customer").fill(card_code)
    till.get_by_role("button", name="Find customer").click()
    expect(till.get_by_role("heading", name="Aliya S.")).to_be_visible()
    till.get_by_label("Amount of the bill").fill("4000")

    lost = []

    def lose_the_first(route):
        if not lost:
            lost.append(route.request.post_data)
            route.abort("failed")  # the Wi-Fi dropped: the server never heard of this sale
        else:
            route.continue_()

    till.route("**/till/purchase", lose_the_first)
    till.get_by_role("button", name="Confirm purchase").click()
    expect(till.get_by_role("alert").filter(has_text=BANNER)).to_be_visible()
    expect(till.get_by_role("button", name="Confirm purchase")).to_be_enabled()
    with live_app.app_context():
        assert db.session.scalar(select(func.count(Purchase.id))) == 0
        db.session.remove()

    with till.expect_request("**/till/purchase") as again:
        till.get_by_role("button", name="Confirm purchase").click()
    expect(till.get_by_role("heading", name="Purchase recorded")).to_be_visible()
    # The same form, the same idempotency key: what was lost and what arrived are one sale.
    assert again.value.post_data == lost[0]
    with live_app.app_context():
        assert db.session.scalar(select(func.count(Purchase.id))) == 1
        db.session.remove()
