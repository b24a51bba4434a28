"""Shops on one street for the browser journeys: approved by the operator, plugins switched on."""

from __future__ import annotations

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.plugins import registry
from webapp.services import accounts, merchants


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
