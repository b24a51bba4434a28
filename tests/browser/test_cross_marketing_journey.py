"""Neighbourhood certificates in a real browser: paid at the salon, gifted, used at the café."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from plugins.cross_marketing import services as certificates
from tests.browser.street import PHONE, TABLET, open_shops, sign_in
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.services import accounts, memberships

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Street:
    cafe_slug: str
    salon_slug: str
    customer_card: str
    friend_card: str


def open_street(app) -> Street:
    """Café Lipa's 500 ₸ certificate, handed out by Salon Aru; a customer of the salon and a
    friend who is a customer of the café."""
    with app.app_context():
        shops = open_shops([("Café Lipa", "cafe@example.com"), ("Salon Aru", "salon@example.com")],
                           ("cross_marketing",))
        cafe, salon = shops["Café Lipa"], shops["Salon Aru"]
        offer = certificates.create_offer(
            db.session, cafe, {"face_value": "500", "validity_days": "30", "fee": "50"}
        )
        partnership = certificates.invite(db.session, cafe, offer.id, salon.id)
        certificates.respond(db.session, salon, partnership.id, True, {"rule_min_purchase": "3000"})
        customer = accounts.register_user(db.session, "aliya@example.com", PASSWORD, "Aliya Serikova")
        friend = accounts.register_user(db.session, "dana@example.com", PASSWORD, "Dana Omarova")
        memberships.join_merchant(db.session, customer, salon, consent_given=True, text_version="t")
        memberships.join_merchant(db.session, friend, cafe, consent_given=True, text_version="t")
        return Street(cafe.slug, salon.slug, customer.card_code, friend.card_code)



def find_customer(till: Page, base: str, slug: str, card: str) -> None:
    till.goto(f"{base}/business/{slug}/till")
    till.get_by_label("Find the customer").fill(card)
    till.get_by_role("button", name="Find customer").click()
    expect(till.get_by_label("Amount of the bill")).to_be_visible()


def test_certificate_from_the_salon_is_gifted_and_used_at_the_cafe(live_app, new_page):
    street = open_street(live_app)
    base = live_app.live_url

    # --- Aliya pays 4,500 ₸ at the salon: the receipt says what she received.
    salon_till = new_page(viewport=TABLET)
    sign_in(salon_till, base, "salon@example.com")
    find_customer(salon_till, base, street.salon_slug, street.customer_card)
    salon_till.get_by_label("Amount of the bill").fill("4500")
    salon_till.get_by_role("button", name="Confirm purchase").click()
    expect(salon_till.get_by_role("heading", name="Purchase recorded")).to_be_visible()
    expect(salon_till.locator("section.receipt")).to_contain_text(re.compile(r"Certificate .*500.* at Café Lipa, valid until"))

    # --- Her wallet shows the café's certificate with its code; she opens it and makes a gift link.
    customer = new_page(viewport=PHONE)
    sign_in(customer, base, "aliya@example.com")
    customer.get_by_role("link", name=re.compile(r"1 certificate waiting, ₸500")).click()
    certificate = customer.locator("article.cm-certificate")
    expect(certificate).to_contain_text("at Café Lipa")
    expect(certificate.get_by_label("Certificate code")).to_have_text(re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z*~$=]{1,4}){4}$"))
    certificate.get_by_role("link", name="Show the QR code, use or gift it").click()
    expect(customer.locator(".qr svg")).to_be_visible()
    customer.get_by_role("button", name="Create a gift link").click()
    gift_link = customer.get_by_label("Gift link").input_value()
    assert "/certificates/gift/" in gift_link

    # --- Dana opens the link, signs in, and puts the certificate into her wallet.
    friend = new_page(viewport=PHONE)
    friend.goto(gift_link)
    friend.get_by_label("E-mail").fill("dana@example.com")
    friend.get_by_label("Password").fill(PASSWORD)
    friend.get_by_role("button", name="Sign in").click()
    expect(friend.get_by_role("heading", name="A certificate for you")).to_be_visible()
    friend.get_by_role("button", name="Put it in my wallet").click()
    expect(friend.get_by_text("The certificate is yours now. Use it at Café Lipa.")).to_be_visible()

    # Aliya no longer holds it.
    customer.goto(f"{base}/certificates/")
    expect(customer.get_by_text("No certificates yet.")).to_be_visible()

    # --- At the café the cashier identifies Dana, sees the certificate and applies it.
    cafe_till = new_page(viewport=TABLET)
    sign_in(cafe_till, base, "cafe@example.com")
    find_customer(cafe_till, base, street.cafe_slug, street.friend_card)
    expect(cafe_till.locator(".checkout-lines")).to_contain_text("The customer holds a certificate for you")
    cafe_till.get_by_label("Amount of the bill").fill("3000")
    cafe_till.get_by_label("Use a certificate the customer holds").select_option(index=1)
    cafe_till.get_by_role("button", name="Confirm purchase").click()
    expect(cafe_till.get_by_role("heading", name="Purchase recorded")).to_be_visible()
    receipt = cafe_till.locator("section.receipt")
    expect(receipt).to_contain_text("Certificate from Salon Aru")
    expect(receipt).to_contain_text("Paid with certificate")

    # --- Both owners' dashboards show the redemption in the certificates panel.
    for page, slug in ((cafe_till, street.cafe_slug), (salon_till, street.salon_slug)):
        page.goto(f"{base}/business/{slug}/dashboard")
        panel = page.locator("#panel-cross_marketing")
        expect(panel.get_by_role("heading", name="Neighbourhood certificates")).to_be_visible()
        expect(panel.locator(".cm-redeemed-count")).to_have_text("1")
        expect(panel.locator("svg.bar-chart")).to_be_visible()
