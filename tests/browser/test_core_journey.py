"""The core journey in a real browser: a new customer joins by link, a cashier spends some of their
points at the till, and the customer sees the new balance and history; the till without JavaScript."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from tests.browser.street import PHONE, TABLET
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import Merchant
from webapp.services import accounts, memberships, merchants, staff
from webapp.services.ledger import Posting, post

pytestmark = pytest.mark.browser

CASHBACK_BP = 500  # 5%
MAX_SHARE_PCT = 50
MINOR_PER_UNIT = 100  # KZT has two decimals; one point is worth one minor unit


@dataclass(frozen=True)
class Shop:
    """Plain values about the merchant set up for a test (no ORM objects cross into the browser)."""

    id: int
    name: str
    slug: str
    join_code: str
    cashier_email: str


def open_shop(app) -> Shop:
    """A network with an approved merchant, its owner, and a cashier who accepted an invitation."""
    with app.app_context():
        operator = accounts.register_user(db.session, "operator@example.com", PASSWORD, "Olga Operator")
        network = merchants.create_network(db.session, "Abay Street", "KZT", operator, slug="abay")
        owner = accounts.register_user(db.session, "owner@example.com", PASSWORD, "Oskar Owner")
        merchant = merchants.apply_to_network(
            db.session, owner, network, name="Corner Bakery", category="bakery",
            address="12 Abay Avenue", opening_hours="Mon-Sun 8:00-20:00",
            cashback_bp=CASHBACK_BP, max_points_share_pct=MAX_SHARE_PCT,
        )
        merchants.decide_application(db.session, network, operator, merchant.id, approve=True)
        cashier = accounts.register_user(db.session, "cashier@example.com", PASSWORD, "Carla Cashier")
        invitation = staff.invite_cashier(db.session, merchant, owner, cashier.email)
        staff.accept_invitation(db.session, invitation.token, cashier)
        return Shop(merchant.id, merchant.name, merchant.slug, merchant.join_code, cashier.email)


def earned(paid_minor: int) -> int:
    """Points the core earns on what was paid (rounded down), at the shop's cashback rate."""
    return paid_minor * CASHBACK_BP // 10000


def cashier_opens_till(page: Page, base_url: str, shop: Shop) -> None:
    """Sign in as the cashier of one shop: the till opens at once."""
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("E-mail").fill(shop.cashier_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Till", exact=True)).to_be_visible()


def receipt_value(page: Page, label: str):
    """The value next to ``label`` in the receipt's definition list."""
    receipt = page.locator("section.receipt")
    return receipt.locator("dt", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).locator("xpath=following-sibling::dd[1]")


def test_new_customer_joins_by_link_and_spends_points_at_the_till(live_app, new_page):
    shop = open_shop(live_app)
    base = live_app.live_url

    # --- The customer scans the poster: the join link opens on a phone.
    customer = new_page(viewport=PHONE)
    customer.goto(f"{base}/join/{shop.join_code}")
    expect(customer.get_by_role("heading", name=f"Get your card at {shop.name}")).to_be_visible()
    customer.get_by_role("link", name="Create an account", exact=True).click()

    expect(customer.get_by_role("heading", name="Create an account")).to_be_visible()
    customer.get_by_label("Your name").fill("Aliya Serikova")
    customer.get_by_label("E-mail").fill("aliya@example.com")
    customer.get_by_label("Password").fill("a long enough password")
    customer.get_by_role("button", name="Create account").click()

    # Registration leads straight back to the join page, now asking for consent.
    expect(customer).to_have_url(re.compile(rf"/join/{shop.join_code}$"))
    expect(customer.get_by_text("Welcome, Aliya! Your account is ready.")).to_be_visible()
    join_button = customer.get_by_role("button", name=f"Join {shop.name}")
    consent = customer.get_by_role("checkbox", name=re.compile("process my name"))
    expect(consent).not_to_be_checked()  # no pre-ticked boxes
    expect(customer.get_by_role("checkbox", name=re.compile("news and offers"))).not_to_be_checked()
    consent.check()
    join_button.click()

    expect(customer.get_by_role("heading", name="My wallet")).to_be_visible()
    expect(customer.get_by_text(f"Welcome to {shop.name}!")).to_be_visible()
    card = customer.locator("article.wallet-card", has=customer.get_by_role("heading", name=shop.name))
    expect(card.locator(".balance")).to_have_text("0")
    card_code = customer.get_by_label("Card code").inner_text().strip()
    # Ten symbols and the check symbol, which may be one of Crockford's extra *~$=U.
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2}[0-9A-Z*~$=]", card_code), card_code

    # --- The cashier, on a tablet, finds the customer by the code read out from the phone.
    till = new_page(viewport=TABLET)
    cashier_opens_till(till, base, shop)
    till.get_by_label("Find the customer").fill(card_code)
    till.get_by_role("button", name="Find customer").click()
    expect(till.get_by_role("heading", name="Aliya S.")).to_be_visible()
    expect(till.locator(".customer-balance")).to_contain_text("0")

    # First purchase: 4,000 ₸, no points to spend yet.
    first_bill = 4000 * MINOR_PER_UNIT
    first_earned = earned(first_bill)
    till.get_by_label("Amount of the bill").fill("4000")
    expect(till.locator("#quote")).to_contain_text(f"+{first_earned:,}")
    till.get_by_role("button", name="Confirm purchase").click()
    expect(till.get_by_role("heading", name="Purchase recorded")).to_be_visible()
    expect(receipt_value(till, "Points earned")).to_have_text(f"+{first_earned:,}")
    expect(receipt_value(till, "Card balance")).to_have_text(f"{first_earned:,}")
    # Today's purchases reload themselves after the sale (htmx event).
    expect(till.locator("#recent .recent-list li")).to_have_count(1)

    # Second purchase: 3,000 ₸, paying 5,000 points of the 20,000 on the card.
    till.get_by_role("link", name="Another sale for Aliya S.").click()
    second_bill = 3000 * MINOR_PER_UNIT
    spent = 5000
    till.get_by_label("Amount of the bill").fill("3000")
    allowed = min(first_earned, second_bill * MAX_SHARE_PCT // 100)
    expect(till.locator("#max-points")).to_have_text(f"{allowed:,}")
    expect(till.get_by_role("button", name=f"Use maximum: {allowed:,} points")).to_be_visible()
    till.get_by_label("Points to use").fill(str(spent))
    second_earned = earned(second_bill - spent)
    expect(till.locator("#quote")).to_contain_text(f"+{second_earned:,}")
    with till.expect_response(lambda r: r.url.endswith("/till/purchase") and r.request.method == "POST") as sale:
        till.get_by_role("button", name="Confirm purchase").click()
    assert sale.value.status == 200
    expect(till.get_by_role("heading", name="Purchase recorded")).to_be_visible()
    new_balance = first_earned - spent + second_earned
    expect(receipt_value(till, "To pay")).to_contain_text("2,950")
    expect(receipt_value(till, "Points earned")).to_have_text(f"+{second_earned:,}")
    expect(receipt_value(till, "Card balance")).to_have_text(f"{new_balance:,}")
    expect(till.locator("#recent .recent-list li")).to_have_count(2)

    # --- The customer reloads the wallet: the new balance and every line with its reason.
    customer.reload()
    expect(card.locator(".balance")).to_have_text(f"{new_balance:,}")
    expect(card.locator(".latest-entry")).to_contain_text(f"+{second_earned:,}")
    card.get_by_role("link", name=re.compile("Open the card")).click()
    expect(customer.get_by_role("heading", name=shop.name, exact=True)).to_be_visible()
    history = customer.locator("ul.history > li")
    expect(history).to_have_count(3)
    expect(history.nth(0)).to_contain_text(re.compile(r"Cashback 5% on purchase #\d+"))
    expect(history.nth(0).locator(".plus")).to_contain_text(f"+{second_earned:,}")
    expect(history.nth(1)).to_contain_text(re.compile(r"Paid with points, purchase #\d+"))
    expect(history.nth(1).locator(".minus")).to_contain_text(f"−{spent:,}")
    expect(history.nth(2)).to_contain_text(re.compile(r"Cashback 5% on purchase #\d+"))
    expect(history.nth(2).locator(".plus")).to_contain_text(f"+{first_earned:,}")


def test_till_records_a_sale_without_javascript(live_app, new_page):
    shop = open_shop(live_app)
    with live_app.app_context():
        customer = accounts.register_user(
            db.session, "timur@example.com", PASSWORD, "Timur Bekov", phone="+7 701 555 0101"
        )
        merchant = db.session.get(Merchant, shop.id)
        membership, _ = memberships.join_merchant(
            db.session, customer, merchant, consent_given=True, text_version="test"
        )
        post(db.session, [Posting(membership.id, merchant.id, "adjust", 1000, "Welcome bonus")])
        db.session.commit()

    till = new_page(viewport=PHONE, java_script_enabled=False, allow_422=True)
    cashier_opens_till(till, live_app.live_url, shop)

    # Found by phone number this time (typed as a cashier would, with spaces).
    till.get_by_label("Find the customer").fill("+7 701 555 0101")
    till.get_by_role("button", name="Find customer").click()
    expect(till.get_by_role("heading", name="Timur B.")).to_be_visible()
    expect(till).to_have_url(re.compile(r"/till\?member=\d+$"))  # post/redirect/get

    # Too many points: the form comes back (422) with the message at the field, amounts kept.
    till.get_by_label("Amount of the bill").fill("1000")
    till.get_by_label("Points to use").fill("5000")
    with till.expect_response(lambda r: r.url.endswith("/till/purchase")) as refused:
        till.get_by_role("button", name="Confirm purchase").click()
    assert refused.value.status == 422
    points_field = till.get_by_label("Points to use")
    expect(points_field).to_have_attribute("aria-invalid", "true")
    expect(till.locator("#e-points")).to_contain_text("At most 1,000 points can be used on this bill.")
    expect(till.get_by_label("Amount of the bill")).to_have_value("1000")
    # The quote came back with the form, but its "use maximum" button needs JavaScript: hidden.
    expect(till.locator("#max-points")).to_have_text("1,000")
    expect(till.locator("[data-fill-target]")).to_have_count(1)
    expect(till.get_by_role("button", name=re.compile("Use maximum"))).to_have_count(0)

    points_field.fill("400")
    till.get_by_role("button", name="Confirm purchase").click()
    expect(till.get_by_role("heading", name="Purchase recorded")).to_be_visible()
    paid = 1000 * MINOR_PER_UNIT - 400
    expect(receipt_value(till, "To pay")).to_contain_text("996")
    expect(receipt_value(till, "Points earned")).to_have_text(f"+{earned(paid):,}")
    expect(receipt_value(till, "Card balance")).to_have_text(f"{1000 - 400 + earned(paid):,}")
    expect(till.locator("#recent .recent-list li")).to_have_count(1)
