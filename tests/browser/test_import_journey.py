"""Import in a real browser: the owner brings 50 customers of the old card program over (three bad
rows, one column matched by hand in the preview), and one of them signs up with the same phone
number written another way and finds the old balance in the wallet, with the day it expires."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask_babel import force_locale, format_date
from playwright.sync_api import expect

from tests.browser.street import PHONE
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.services import accounts, merchants
from webapp.timezones import local_date, zone

pytestmark = pytest.mark.browser


def old_program_file(path) -> None:
    """50 customers as the old program exported them (semicolons, Windows-1251), 3 rows bad."""
    lines = ["Клиент;Контактный номер;Бонус"]
    for number in range(47):
        lines.append(f"Клиент {number};8 701 700 {number:04d};{100 + number}")
    lines.append("Без телефона;12;5")  # not a phone number
    lines.append("Минус;8 701 799 0001;-40")  # a negative balance
    lines.append("Дубль;+7 701 700 0003;9")  # the same person as customer 3
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1251"))


def test_owner_imports_customers_and_one_signs_up_to_find_the_old_balance(live_app, new_page, tmp_path):
    with live_app.app_context():
        operator = accounts.register_user(db.session, "operator@example.com", PASSWORD, "Olga Operator")
        network = merchants.create_network(db.session, "Abay Street", "KZT", operator, slug="abay",
                                           timezone="Asia/Almaty")
        owner = accounts.register_user(db.session, "owner@example.com", PASSWORD, "Oskar Owner")
        merchant = merchants.apply_to_network(
            db.session, owner, network, name="Corner Bakery", category="bakery",
            cashback_bp=500, max_points_share_pct=50,
        )
        merchants.decide_application(db.session, network, operator, merchant.id, approve=True)
        # Points expire a year after they are credited: imported balances included.
        merchant.points_expiry_mode, merchant.points_expiry_months = "earned", 12
        db.session.commit()
        slug = merchant.slug
    base = live_app.live_url
    csv_path = tmp_path / "old-program.csv"
    old_program_file(csv_path)

    # --- The owner opens the import from the customers page and uploads the old list.
    page = new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/auth/login")
    page.get_by_label("E-mail").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{base}/business/{slug}/customers")
    page.get_by_role("link", name="Import customers").click()
    expect(page.get_by_role("heading", name="Import customers", exact=True)).to_be_visible()
    page.get_by_label("CSV file", exact=True).set_input_files(str(csv_path))
    page.get_by_role("button", name="Upload and check").click()

    # --- The preview: names read right from Windows-1251; the phone column was not recognised.
    expect(page.get_by_text("50 customers in the file")).to_be_visible()
    expect(page.get_by_role("cell", name="Клиент 0", exact=True)).to_be_visible()
    phone_column = page.get_by_label("Field for column “Контактный номер”")
    expect(phone_column).to_have_value("")
    expect(page.get_by_label("Field for column “Бонус”")).to_have_value("balance")
    phone_column.select_option("phone")
    page.get_by_role("button", name="Check the rows (dry run)").click()

    # --- The dry run: every bad row named in words, with counts.
    check = page.locator("#import-check")
    expect(check.locator(".figure", has_text="New customers").locator(".value")).to_have_text("47")
    expect(check.locator(".figure", has_text="Rows with problems").locator(".value")).to_have_text("3")
    problems = check.locator("table.import-problems tbody tr")
    expect(problems).to_have_count(3)
    expect(problems.nth(0)).to_contain_text("bad phone number “12”")
    expect(problems.nth(1)).to_contain_text("negative points balance -40")
    expect(problems.nth(2)).to_contain_text("the same person as on line 5")
    page.get_by_role("button", name="Import 47 customers").click()

    # --- The import ran in the queue; the progress region shows it finished.
    progress = page.locator("#import-progress")
    expect(progress.get_by_role("heading")).to_contain_text("done")
    expect(progress.locator("progress")).to_have_attribute("value", "50")
    expect(progress.locator(".figure", has_text="Points imported").locator(".value")).to_have_text(
        f"{sum(100 + n for n in range(47)):,}")

    # --- Customer 12 signs up on a phone with the number written the international way.
    customer = new_page(viewport=PHONE)
    customer.goto(f"{base}/auth/register")
    customer.get_by_label("Your name").fill("Aigerim Sadykova")
    customer.get_by_label("E-mail").fill("aigerim@example.com")
    customer.get_by_label("Phone (optional)").fill("+7 (701) 700-00-12")
    customer.get_by_label("Password").fill(PASSWORD)
    customer.get_by_role("button", name="Create account").click()
    customer.wait_for_url(re.compile(r"/wallet/"))
    card = customer.locator("article.wallet-card", has_text="Corner Bakery")
    expect(card.locator(".balance")).to_have_text("112")
    expect(card).to_contain_text("Imported from the previous program")
    # ... and sees when those points expire: a year after the import, in the network's calendar.
    today = local_date(utcnow(), zone("Asia/Almaty"))
    expires = today + timedelta(days=365) if (today.month, today.day) == (2, 29) else today.replace(year=today.year + 1)
    with live_app.test_request_context(), force_locale("en"):
        shown = format_date(expires, "medium")
    expect(card.locator(".expiry-note")).to_contain_text(f"112 points expire on {shown}.")
    # The policy is said in plain words on the card's own page.
    card.get_by_role("link", name=re.compile("Open the card")).click()
    expect(customer.locator(".expiry-note")).to_contain_text("112 points expire on")
