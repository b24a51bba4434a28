"""The pages the bench measures send a small, fixed number of statements with every plugin on.

The owner's dashboard and customer list and a customer's wallet, counted like the bench counts
them (``before_cursor_execute``, SQLite's ``BEGIN`` left out), after a warm-up request. The
limits are the counts of 2026-12-07 (dashboard 12, customer list 3, wallet 14 on both backends).
"""

from flask import current_app
from sqlalchemy import event

from webapp.extensions import db

LIMITS = {"dashboard": 12, "customers": 3, "wallet": 14}


def _statements_for(client, path):
    db.session.expunge_all()  # requests share the test's session: start from fresh objects, as a request does
    counted = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith("BEGIN"):
            counted.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    return counted


def _enable_every_plugin(merchant, owner):
    from webapp.services import merchants

    registry = current_app.extensions["neighbourly"]
    for name in registry.in_dependency_order():
        merchants.set_plugin_enabled(db.session, registry, merchant, name, True, actor=owner)


def test_staff_pages_and_wallet_stay_within_their_statements(app, client, make_user, make_merchant, make_member):
    owner = make_user(name="Owner")
    shop = make_merchant(owner=owner)
    other = make_merchant()
    customer = make_user()
    for merchant in (shop, other):
        make_member(merchant, user=customer, points=25)
    for _ in range(3):
        make_member(shop, points=10)
    _enable_every_plugin(shop, owner)
    slug = shop.slug

    client.login(owner)
    wallet = app.test_client()
    wallet.login(customer)
    counts = {}
    for page, browser, path in (
        ("dashboard", client, f"/business/{slug}/dashboard"),
        ("customers", client, f"/business/{slug}/customers"),
        ("wallet", wallet, "/wallet/"),
    ):
        browser.get(path)  # warm: templates, prebuilt statements
        counts[page] = _statements_for(browser, path)

    for page, limit in LIMITS.items():
        assert len(counts[page]) <= limit, (page, len(counts[page]), counts[page])
