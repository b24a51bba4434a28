"""axe-core (from npm, injected by Playwright) on the pages each role uses most, on the demo
street with every plugin on: no critical or serious violation, on a phone and on a desktop."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.street import PHONE
from tests.browser.test_wallet_phone import sign_in_demo
from tests.demo_people import load_demo_people

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
# Rules about the page as a whole that a fragment or a test page cannot meet are not skipped:
# every rule runs; only the impact decides.
BLOCKING = ("critical", "serious")


def axe_violations(page) -> list[str]:
    """Run axe on the page as it is; the script is added through the DevTools protocol, which the
    page's Content-Security-Policy does not govern (the page itself still allows no inline script)."""
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    assert results["testEngine"]["name"] == "axe-core" and results["url"] == page.url
    return [
        f"{page.url}: {violation['id']} ({violation['impact']}): "
        + "; ".join(node["target"][0] if isinstance(node["target"][0], str) else str(node["target"])
                    for node in violation["nodes"][:3])
        for violation in results["violations"]
        if violation["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_main_pages_have_no_serious_accessibility_violations(live_app, new_page, viewport):
    if not AXE.exists():
        pytest.fail("axe-core is missing: run npm ci")
    with live_app.app_context():
        people = load_demo_people()
    base = live_app.live_url
    found: list[str] = []

    visitor = new_page(viewport=viewport)
    for path in ("/", f"/m/{people.shop_slug}"):
        visitor.goto(base + path)
        found += axe_violations(visitor)

    customer = new_page(viewport=viewport)
    sign_in_demo(customer, base, people.customer_email)
    pages = ["/wallet/", f"/wallet/cards/{people.membership_ids[0]}"]
    if people.survey_token:
        pages.append(f"/surveys/s/{people.survey_token}")
    for path in pages:
        customer.goto(base + path)
        found += axe_violations(customer)

    owner = new_page(viewport=viewport)
    sign_in_demo(owner, base, people.owner_email)
    for page_name in ("till", "dashboard", "customers", "marketplace"):
        owner.goto(f"{base}/business/{people.shop_slug}/{page_name}")
        owner.wait_for_load_state("networkidle")  # lazy dashboard panels are in
        found += axe_violations(owner)

    assert found == [], "\n".join(found)
