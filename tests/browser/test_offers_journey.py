"""Offers in a real browser: customers who came 70 days ago (an injected clock) and one who came
today; the owner builds "no visit for 60 days", watches the size change as they type, sends 300
points, and one of the quiet customers finds the offer under "For you" in the wallet and takes it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from playwright.sync_api import expect

from tests.browser.street import PHONE, open_shops, sign_in
from tests.browser.test_accessibility import AXE, axe_violations
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.services import accounts, memberships
from webapp.services.purchases import PurchaseDraft, record_purchase

pytestmark = pytest.mark.browser

QUIET = ("aliya@example.com", "dana@example.com")
REGULAR = "marat@example.com"


def open_cafe(app) -> str:
    with app.app_context():
        cafe = open_shops([("Corner Café", "cafe@example.com")], ("offers",))["Corner Café"]
        slug = cafe.slug

        def customer(email: str) -> None:
            person = accounts.register_user(
                db.session, email, PASSWORD, email.split("@")[0].title()
            )
            card, _new = memberships.join_merchant(
                db.session, person, cafe, consent_given=True, text_version="t"
            )
            record_purchase(
                db.session,
                cafe,
                card,
                PurchaseDraft(
                    membership_id=card.id,
                    amount=250_000,
                    points_to_use=0,
                    idempotency_key=uuid.uuid4().hex,
                ),
            )

        with time_machine.travel(datetime.now(UTC) - timedelta(days=70), tick=True):
            for email in QUIET:
                customer(email)
        customer(REGULAR)
        return slug


def test_an_owner_sends_points_to_quiet_customers_and_one_takes_them(live_app, new_page):
    slug = open_cafe(live_app)
    base = live_app.live_url

    owner = new_page(viewport=PHONE)
    sign_in(owner, base, "cafe@example.com")
    owner.goto(f"{base}/business/{slug}/offers/")
    owner.get_by_role("link", name="New offer").click()
    expect(owner.locator("#segment-size")).to_contain_text("3 customers match.")
    owner.get_by_label("No visit for more than this many days").fill("60")
    expect(owner.locator("#segment-size")).to_contain_text("2 customers match.")  # live, no reload
    owner.get_by_label("Birthday in").select_option("2")
    expect(owner.locator("#segment-size")).to_contain_text("This segment matches nobody.")
    owner.get_by_label("Birthday in").select_option("")
    expect(owner.locator("#segment-size")).to_contain_text("2 customers match.")
    if AXE.exists():
        assert axe_violations(owner) == []
    owner.get_by_label("Title").fill("We miss you")
    owner.get_by_label("Message", exact=True).fill("Come by this week: a coffee is on us.")
    owner.get_by_label("Points for each customer").fill("300")
    owner.get_by_role("button", name="Send the offer").click()
    expect(owner.get_by_text("Sent to 2 customers.")).to_be_visible()
    expect(owner.get_by_role("heading", name="We miss you")).to_be_visible()
    expect(owner.locator(".offers-explain")).to_contain_text("control group")
    if AXE.exists():
        assert axe_violations(owner) == []

    aliya = new_page(viewport=PHONE)
    sign_in(aliya, base, QUIET[0])
    summary = aliya.get_by_role("link", name="1 offer for you")
    expect(summary).to_be_visible()
    summary.click()
    expect(aliya.get_by_role("heading", name="For you")).to_be_visible()
    aliya.get_by_role("link", name="We miss you").click()
    expect(aliya.get_by_text("Come by this week: a coffee is on us.")).to_be_visible()
    expect(aliya.get_by_text("300 points for you.")).to_be_visible()
    if AXE.exists():
        assert axe_violations(aliya) == []
    aliya.get_by_role("button", name="Take it").click()
    expect(aliya.get_by_text("It is yours. Thank you!")).to_be_visible()
    expect(aliya.get_by_text("Taken")).to_be_visible()
    aliya.get_by_role("link", name="Corner Café").click()
    expect(aliya.locator(".balance")).to_have_text("12,800")  # 12,500 cashback + 300

    marat = new_page(viewport=PHONE)
    sign_in(marat, base, REGULAR)
    expect(marat.get_by_text("offer for you")).to_have_count(0)

    owner.reload()
    expect(owner.locator(".offers-report")).to_contain_text("Used")
