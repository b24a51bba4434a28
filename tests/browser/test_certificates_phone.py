"""The certificate pages on a phone (390 px wide), on the demo street with every plugin on: the
owner's certificates and economics pages and the customer's certificates fit the screen's width
(nothing scrolls the whole page sideways; a wide table may scroll inside its own box)."""

from __future__ import annotations

import pytest

from tests.browser.street import PHONE
from tests.browser.test_wallet_phone import sign_in_demo
from tests.demo_people import load_demo_people

pytestmark = pytest.mark.browser

# How far the page reaches past the viewport, and what sticks out (for the failure message).
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  const clipped = (element) => {
    for (let parent = element.parentElement; parent && parent !== document.body; parent = parent.parentElement) {
      if (getComputedStyle(parent).overflowX !== "visible") { return true; }
    }
    return false;
  };
  for (const element of document.querySelectorAll("body *")) {
    const box = element.getBoundingClientRect();
    if (box.width && box.right > width + 1 && !clipped(element)) {
      const name = element.tagName.toLowerCase() + (element.id ? "#" + element.id : "")
        + (element.className ? "." + String(element.className).split(" ").join(".") : "");
      wide.push([Math.round(box.right), name]);
    }
  }
  wide.sort((a, b) => b[0] - a[0]);
  return {extra: document.documentElement.scrollWidth - width, wide: wide.slice(0, 6).map((w) => w[1] + " " + w[0])};
}"""


def overflow(page) -> dict:
    return page.evaluate(OVERFLOW)


def test_certificate_pages_fit_a_phone(live_app, new_page):
    if "cross_marketing" not in live_app.extensions["neighbourly"].modules:
        pytest.skip("the cross_marketing plugin is not installed")
    with live_app.app_context():
        people = load_demo_people()
    base = live_app.live_url
    found = {}

    owner = new_page(viewport=PHONE)
    sign_in_demo(owner, base, people.owner_email)
    for path in ("/certificates/", "/certificates/economics", "/certificates/network"):
        response = owner.goto(f"{base}/business/{people.shop_slug}{path}")
        assert response.status == 200, path
        found[path] = overflow(owner)

    customer = new_page(viewport=PHONE)
    sign_in_demo(customer, base, people.customer_email)
    customer.goto(f"{base}/certificates/")
    found["customer /certificates/"] = overflow(customer)
    first = customer.locator("main a[href^='/certificates/']").first
    if first.count():
        first.click()
        customer.wait_for_load_state()
        found["customer certificate"] = overflow(customer)

    assert {path: result for path, result in found.items() if result["extra"] > 0} == {}
