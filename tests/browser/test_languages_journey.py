"""A customer on a phone in Kazakh and in Bulgarian: the directory, a business's e-card, signing in
and the wallet, with no English left on those screens and numbers written the local way."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from tests.browser.street import PHONE, open_shops
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.services import accounts, memberships, price_items
from webapp.services.ledger import Posting, post

pytestmark = pytest.mark.browser

# Words of the English interface that must not be left on a translated screen.
ENGLISH = re.compile(
    r"\b(Wallet|My wallet|Points?|points?|Sign in|Sign out|Join|Directory|Account|My card|History|"
    r"Loyalty card|Get the card|Password|Neighbourhood directory|Latest points|Full history)\b"
)


# What the street search says a ₸1,200 latte earns at 5% cashback: 6,000 points (a point is a tiyn),
# written the local way.
EARN = {"kk": re.compile(r"сіз 6\s?000 ұпай аласыз"), "bg": re.compile(r"получавате 6\s?000 точки")}


@dataclass(frozen=True)
class Street:
    network_slug: str
    shop_name: str
    shop_slug: str
    email: str


def open_street(app, customer_locale: str | None) -> Street:
    """Two shops on a street with plugins on, and a customer holding 123,456 points at one."""
    with app.app_context():
        shops = open_shops(
            [("Дастархан", "dastarkhan@example.com"), ("Кафе Липа", "lipa@example.com")],
            ("news", "referrals", "surveys", "concierge", "offers"),
        )
        shop = shops["Дастархан"]
        price_items.save_items(db.session, shop, [price_items.ItemRow(None, "Латте", 120_000, "Кофе")])
        customer = accounts.register_user(db.session, "aru@example.com", PASSWORD, "Аружан Серікова")
        customer.locale = customer_locale
        membership, _ = memberships.join_merchant(db.session, customer, shop, consent_given=True, text_version="t")
        post(db.session, [Posting(membership.id, shop.id, "adjust", 123_456, "Welcome bonus")])
        db.session.commit()
        return Street(shop.network.slug, shop.name, shop.slug, customer.email)


def no_english(page: Page) -> None:
    text = page.locator("body").inner_text()
    left = sorted(set(ENGLISH.findall(text)))
    assert left == [], f"English words on {page.url}: {left}"


def journey(page: Page, base: str, street: Street, words: dict[str, str]) -> None:
    page.goto(f"{base}/n/{street.network_slug}/")
    expect(page.get_by_role("heading", name=words["directory"])).to_be_attached()  # for screen readers
    expect(page.get_by_role("link", name=words["sign_in"], exact=True)).to_be_visible()
    no_english(page)

    page.get_by_role("link", name=street.shop_name).first.click()
    expect(page).to_have_url(re.compile(rf"/m/{street.shop_slug}$"))
    expect(page.get_by_role("heading", name=street.shop_name, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name=words["loyalty_card"])).to_be_visible()
    expect(page.locator("form.cg-ask").first).to_be_visible()  # ask the merchant (concierge)
    no_english(page)

    # Find it on the street: the item, its price and the points it earns, in the reader's words.
    page.goto(f"{base}/n/{street.network_slug}/street?q=латте")
    expect(page.locator(".street-item").first).to_contain_text("Латте")
    expect(page.locator(".street-item").first).to_contain_text(words["you_earn"])
    no_english(page)

    page.get_by_role("link", name=words["sign_in"], exact=True).click()
    expect(page).to_have_url(re.compile(r"/auth/login"))
    no_english(page)
    page.get_by_label(words["email"]).fill(street.email)
    page.get_by_label(words["password"]).fill(PASSWORD)
    page.get_by_role("button", name=words["sign_in"], exact=True).click()
    page.wait_for_url(lambda url: "/auth/login" not in url)

    page.goto(f"{base}/wallet/")
    expect(page.get_by_role("heading", name=words["wallet"])).to_be_visible()
    card = page.locator("article.wallet-card", has=page.get_by_role("heading", name=street.shop_name))
    expect(card.locator(".balance")).to_have_text(words["balance"])
    expect(page.get_by_role("button", name=words["sign_out"])).to_be_visible()
    no_english(page)


def test_a_kazakh_customer_reads_every_screen_in_kazakh(live_app, new_page):
    """The browser asks for Kazakh; the customer has not chosen a language in the account."""
    street = open_street(live_app, None)
    page = new_page(viewport=PHONE, locale="kk-KZ", extra_http_headers={"Accept-Language": "kk-KZ,kk;q=0.9"})
    journey(page, live_app.live_url, street, {
        "directory": "Барлық бизнестер", "sign_in": "Кіру", "loyalty_card": "Адалдық картасы",
        "email": "E-mail", "password": "Құпиясөз", "wallet": "Менің әмияным", "sign_out": "Шығу",
        "balance": "123\xa0456", "you_earn": EARN["kk"],
    })
    assert page.locator("html").get_attribute("lang") == "kk"


def test_a_bulgarian_customer_switches_to_bulgarian_and_stays_in_it(live_app, new_page):
    """The browser asks for English; the customer picks Български in the footer and it sticks."""
    street = open_street(live_app, None)
    page = new_page(viewport=PHONE, locale="en-GB")
    page.goto(f"{live_app.live_url}/n/{street.network_slug}/")
    expect(page.get_by_role("heading", name="All businesses")).to_be_attached()
    with page.expect_navigation():
        page.locator("#locale-select").select_option("bg")
    assert page.locator("html").get_attribute("lang") == "bg"
    journey(page, live_app.live_url, street, {
        "directory": "Всички бизнеси", "sign_in": "Вход", "loyalty_card": "Карта за лоялност",
        "email": "Имейл", "password": "Парола", "wallet": "Моят портфейл", "sign_out": "Изход",
        "balance": "123\xa0456", "you_earn": EARN["bg"],
    })
    # Signing in kept the choice made before it, in the account too.
    with live_app.app_context():
        assert accounts.find_user_by_email(db.session, street.email).locale == "bg"
