"""What the browser journeys share: screen sizes, signing in, shops approved with plugins on."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.plugins import registry
from webapp.services import accounts, merchants

PHONE = {"width": 390, "height": 844}
TABLET = {"width": 820, "height": 1180}


def sign_in(page: Page, base: str, email: str) -> None:
    """Sign in with the shared test password, then open the wallet (staff land on their till or
    dashboard; the journeys go on from the wallet)."""
    page.goto(f"{base}/auth/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.goto(f"{base}/wallet/")
    expect(page.get_by_role("heading", name="My wallet")).to_be_visible()


def open_shops(shops: list[tuple[str, str]], plugins: tuple[str, ...]) -> dict:
    """``(name, owner e-mail)`` pairs -> their merchants on "Abay Street", each with ``plugins`` on.

    Call inside an app context; every account's password is ``tests.conftest.PASSWORD``.
    """
    operator = accounts.register_user(db.session, "operator@example.com", PASSWORD, "Olga Operator")
    network = merchants.create_network(db.session, "Abay Street", "KZT", operator, slug="abay")
    opened = {}
    for name, email in shops:
        owner = accounts.register_user(db.session, email, PASSWORD, f"Owner of {name}")
        shop = merchants.apply_to_network(
            db.session, owner, network, name=name, category="cafe", address="1 Abay Avenue",
            opening_hours="9-21", cashback_bp=500, max_points_share_pct=50,
        )
        merchants.decide_application(db.session, network, operator, shop.id, approve=True)
        for plugin in plugins:
            merchants.set_plugin_enabled(db.session, registry(), shop, plugin, True, owner)
        opened[name] = shop
    return opened
