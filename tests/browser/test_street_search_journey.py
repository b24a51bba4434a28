"""A visitor on a phone searches the street for "кофе" while typing (htmx, debounced), compares
two coffee shops side by side (prices, cashback, points), narrows to what is open now, opens one
shop's page; the same search works without JavaScript. axe finds nothing serious."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.street import PHONE, open_shops
from tests.browser.test_accessibility import AXE, axe_violations
from webapp.extensions import db
from webapp.services import hours, price_items

pytestmark = pytest.mark.browser


def coffee_street(app) -> str:
    with app.app_context():
        shops = open_shops(
            [
                ("Aroma Coffee", "aroma@example.com"),
                ("Bean There", "bean@example.com"),
                ("Corner Bakery", "bakery@example.com"),
            ],
            (),
        )
        network = shops["Aroma Coffee"].network
        network.default_locale = "ru"
        network.timezone = "Asia/Almaty"
        network.point_value_minor = 100
        shops["Bean There"].cashback_bp = 1000
        db.session.commit()
        rows = {
            "Aroma Coffee": [("Кофе латте", 120000, "Кофе"), ("Капучино", 110000, "Кофе")],
            "Bean There": [
                ("Кофе по-восточному", 90000, "Кофе"),
                ("Латте на овсяном", 150000, "Кофе"),
            ],
            "Corner Bakery": [("Круассан", 80000, "Выпечка")],
        }
        for name, items in rows.items():
            price_items.save_items(
                db.session, shops[name], [price_items.ItemRow(None, *row) for row in items]
            )
        # Bean There never opens (closed every day): "open now" leaves only Aroma Coffee.
        hours.save_hours(db.session, shops["Aroma Coffee"], {day: (0, 1440) for day in range(7)})
        hours.save_hours(db.session, shops["Bean There"], {})
        db.session.commit()
        return network.slug


def test_a_visitor_compares_two_coffee_shops_on_a_phone(live_app, new_page):
    if not AXE.exists():
        pytest.fail("axe-core is missing: run npm ci")
    slug = coffee_street(live_app)
    base = live_app.live_url
    page = new_page(viewport=PHONE)
    page.goto(f"{base}/n/{slug}/")
    page.get_by_role("link", name="Search every price list on the street").click()
    expect(page.get_by_role("heading", name="Find it on the street")).to_be_visible()
    assert axe_violations(page) == []

    # Typing searches as the visitor goes: no button pressed.
    page.get_by_label("What are you looking for?").press_sequentially("кофе", delay=60)
    group = page.locator(".street-group").first
    expect(group.get_by_role("heading", name="Кофе")).to_be_visible()
    expect(group).to_contain_text("Aroma Coffee")
    expect(group).to_contain_text("Bean There")
    expect(page).to_have_url(f"{base}/n/{slug}/street?q=%D0%BA%D0%BE%D1%84%D0%B5&category=")
    items = group.locator(".street-item")
    # Side by side, cheapest first, each with its shop, cashback and the points for that price.
    expect(items.first).to_contain_text("Кофе по-восточному")
    expect(items.first).to_contain_text("Cashback 10%")
    expect(items.first).to_contain_text("you earn 90 points")
    expect(group.locator(".street-item", has_text="Кофе латте")).to_contain_text(
        "you earn 60 points"
    )
    expect(page.get_by_text("Круассан")).to_have_count(0)
    assert axe_violations(page) == []

    # Only what is open now.
    page.get_by_label("Open now").check()
    expect(page.locator(".street-group").first).not_to_contain_text("Bean There")
    expect(page.locator(".street-group").first).to_contain_text("Aroma Coffee")
    expect(page.locator(".street-item").first).to_contain_text("open now")
    page.get_by_role("link", name="Aroma Coffee").first.click()
    expect(page.get_by_role("heading", name="Aroma Coffee")).to_be_visible()
    expect(page.get_by_text("Кофе латте")).to_be_visible()


def test_the_street_search_works_without_javascript(live_app, new_page):
    slug = coffee_street(live_app)
    page = new_page(viewport=PHONE, java_script_enabled=False)
    page.goto(f"{live_app.live_url}/n/{slug}/street")
    page.get_by_label("What are you looking for?").fill("латте")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".street-group").first).to_contain_text("Aroma Coffee")
    expect(page.locator(".street-group").first).to_contain_text("Латте на овсяном")
