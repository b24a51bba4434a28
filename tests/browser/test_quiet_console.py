"""The till and the marketplace used with JavaScript on the demo street (every plugin on, in Russian),
mistakes included: the browser's console stays empty and the Content-Security-Policy sees no
violation. The ``new_page`` fixture fails on any console error; this test also counts
``securitypolicyviolation`` events itself and watches every answer htmx gets."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.street import PHONE, TABLET
from tests.browser.test_wallet_phone import sign_in_demo
from tests.demo_people import load_demo_people
from webapp.extensions import db
from webapp.models import Membership, User

pytestmark = pytest.mark.browser

# Added through the DevTools protocol before any page script: records what the CSP refused.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " " + (event.blockedURI || "inline") + " " + event.sourceFile + ":" + event.lineNumber);
});
"""


def watch(page, statuses: list[tuple[int, str]]) -> None:
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("response", lambda response: statuses.append((response.status, response.url)))


def violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations")


def test_till_and_marketplace_with_mistakes_leave_the_console_empty(live_app, new_page):
    with live_app.app_context():
        people = load_demo_people()
        card_code = db.session.scalar(
            User.__table__.select()
            .with_only_columns(User.card_code)
            .join(Membership.__table__, Membership.user_id == User.id)
            .where(Membership.id == people.membership_ids[0])
        )
    base = live_app.live_url
    statuses: list[tuple[int, str]] = []

    # --- The cashier at the till, on a tablet: a code that finds nobody, a bad amount, then a sale.
    till = new_page(viewport=TABLET)
    watch(till, statuses)
    sign_in_demo(till, base, people.cashier_email)
    till.goto(f"{base}/business/{people.shop_slug}/till")
    search = till.locator("#checkout input[name=q]")
    search.fill("0000-0000-000")
    with till.expect_response(lambda r: r.url.endswith("/till/find")) as missing:
        search.press("Enter")
    assert missing.value.status == 200 and missing.value.headers["neighbourly-status"] == "422"
    expect(till.locator("#checkout .alert-warn")).to_be_visible()

    till.locator("#checkout input[name=q]").fill(card_code)
    till.locator("#checkout input[name=q]").press("Enter")
    amount = till.locator("#f-amount")
    expect(amount).to_be_visible()
    # A typo (a letter O): the live quote and Confirm both answer with a message.
    amount.fill("45O0")
    with till.expect_response(lambda r: r.url.endswith("/till/purchase")) as refused:
        till.locator("#purchase-form button[type=submit]").click()
    assert refused.value.status == 200 and refused.value.headers["neighbourly-status"] == "422"
    expect(till.locator("#f-amount")).to_have_attribute("aria-invalid", "true")

    till.locator("#f-amount").fill("4500")
    expect(till.locator("#quote")).to_contain_text("4")
    till.locator("#purchase-form button[type=submit]").click()
    expect(till.locator("section.receipt")).to_be_visible()
    expect(till.locator("#recent .recent-list li").first).to_be_visible()
    assert violations(till) == []

    # --- The owner in the marketplace, on a phone: a setting out of range, then saved, then off and on.
    owner = new_page(viewport=PHONE)
    watch(owner, statuses)
    sign_in_demo(owner, base, people.owner_email)
    owner.goto(f"{base}/business/{people.shop_slug}/marketplace")
    news = owner.locator("#plugin-news")
    news.locator("details.plugin-settings summary").click()
    posts_shown = news.locator("input[name=posts_shown]")
    posts_shown.fill("99")
    with owner.expect_response(
        lambda r: r.url.endswith("/marketplace/news/settings")
    ) as bad_setting:
        news.locator("details.plugin-settings button[type=submit]").click()
    assert (
        bad_setting.value.status == 200 and bad_setting.value.headers["neighbourly-status"] == "422"
    )
    expect(news.locator("input[name=posts_shown]")).to_have_attribute("aria-invalid", "true")
    news.locator("input[name=posts_shown]").fill("4")
    news.locator("details.plugin-settings button[type=submit]").click()
    expect(news.locator("p.alert[role=status]")).to_be_visible()
    news.locator("form.switch-row button[type=submit]").click()
    expect(news.locator(".switch-row .badge.off")).to_be_visible()
    news.locator("form.switch-row button[type=submit]").click()
    expect(news.locator(".switch-row .badge.off")).to_have_count(0)
    assert violations(owner) == []

    # No answer was a 4xx or 5xx: the mistakes came back as forms with their messages.
    assert [entry for entry in statuses if entry[0] >= 400] == []
