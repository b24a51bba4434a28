"""The till with a price list: the cashier narrows the list by typing, picks two lattes and a
croissant, sees the bill and the points from the live quote, confirms, and the receipt lists the
lines (on a tablet, checked with axe)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.street import TABLET
from tests.browser.test_accessibility import axe_violations
from tests.browser.test_core_journey import cashier_opens_till, open_shop
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import Merchant, Purchase, PurchaseItem
from webapp.services import accounts, memberships, price_items

pytestmark = pytest.mark.browser


def test_the_cashier_picks_items_and_the_receipt_lists_them(live_app, new_page):
    shop = open_shop(live_app)
    with live_app.app_context():
        merchant = db.session.get(Merchant, shop.id)
        price_items.add_items(
            db.session,
            merchant,
            [
                price_items.ItemRow(None, "Latte", 150_000),
                price_items.ItemRow(None, "Croissant", 90_000),
                price_items.ItemRow(None, "Rye loaf", 120_000),
            ],
            "en",
        )
        customer = accounts.register_user(db.session, "aliya@example.com", PASSWORD, "Aliya S.")
        memberships.join_merchant(
            db.session, customer, merchant, consent_given=True, text_version="test"
        )
        card_code = customer.card_code
        db.session.commit()
        db.session.remove()
    till = new_page(viewport=TABLET)
    cashier_opens_till(till, live_app.live_url, shop)
    till.get_by_label("Find the customer").fill(card_code)
    till.get_by_role("button", name="Find customer").click()
    expect(till.get_by_role("heading", name="Aliya S.")).to_be_visible()

    till.get_by_text("Items from the price list").click()
    till.get_by_label("Find an item").fill("lat")
    expect(till.get_by_label("Quantity of Rye loaf")).to_be_hidden()
    till.get_by_label("Quantity of Latte").fill("2")
    till.get_by_label("Find an item").fill("")
    till.get_by_label("Quantity of Croissant").fill("1")
    # 2 x 1,500 + 900 = 3,900 tenge, from the sale's own computation.
    expect(till.locator("#quote-items")).to_contain_text("Bill from 3 items")
    expect(till.locator("#quote-items")).to_have_attribute("data-amount", "390000")
    expect(till.locator("#to-collect")).to_have_attribute("data-amount-paid", "390000")
    assert axe_violations(till) == []

    till.get_by_role("button", name="Confirm purchase").click()
    expect(till.get_by_role("heading", name="Purchase recorded")).to_be_visible()
    receipt = till.locator("section.receipt")
    expect(receipt).to_contain_text("Latte × 2")
    expect(receipt).to_contain_text("Croissant × 1")
    assert axe_violations(till) == []
    with live_app.app_context():
        purchase = db.session.scalar(select(Purchase))
        assert purchase.amount == 390_000
        lines = db.session.scalars(select(PurchaseItem.name).order_by(PurchaseItem.id)).all()
        assert lines == ["Latte", "Croissant"]
        db.session.remove()
