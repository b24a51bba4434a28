"""The pages the bench measures send a small, fixed number of statements with every plugin on.

The owner's dashboard and customer list, a customer's wallet and the till's purchase POST,
counted like the bench counts them (``before_cursor_execute``, SQLite's ``BEGIN`` left out), after
a warm-up request. The limits are the counts of 2026-12-07 (dashboard 12, customer list 3,
wallet 14, checkout 12 on both backends).
"""

from contextlib import contextmanager

from flask import current_app
from sqlalchemy import event

from webapp import outbox
from webapp.extensions import db

LIMITS = {"dashboard": 12, "customers": 3, "wallet": 14}


@contextmanager
def _counted():
    """The statements sent inside the block (a list filled as they go)."""
    db.session.expunge_all()  # requests share the test's session: start from fresh objects, as a request does
    counted = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith("BEGIN"):
            counted.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        yield counted
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)


def _statements_for(client, path):
    with _counted() as counted:
        assert client.get(path).status_code == 200
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


# The till's purchase POST (htmx), with every plugin on: the signed-in user, the shop with its
# role, network and plugin rows, the card, the sale's eight, and for the receipt the level reached.
# The receipt reads neither the card (its new figures came back from the sale's UPDATE) nor
# certificates (the sale in this request handed out and used none).
CHECKOUT_LIMIT = 12


def _statements_of_post(client, path, data, monkeypatch):
    headers = {"HX-Request": "true", "X-CSRFToken": client.csrf_token()}  # (a request of its own)
    handed_over = []
    with monkeypatch.context() as patched:
        patched.setattr(outbox, "hand_over", handed_over.extend)  # the worker runs them later, not the POST
        with _counted() as counted:
            response = client.post(path, data=data, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert "Purchase recorded" in response.get_data(as_text=True)
    assert handed_over  # the sale left follow-up work in the outbox
    for message_id, _delay in handed_over:
        outbox.run_message(db.session, message_id)
    return counted


def test_the_checkout_post_stays_within_its_statements(app, client, make_user, make_merchant, make_member, monkeypatch):
    owner, cashier = make_user(name="Owner"), make_user(name="Cashier")
    shop = make_merchant(owner=owner, cashiers=[cashier])
    _enable_every_plugin(shop, owner)
    cards = [make_member(shop, points=5_000).id for _ in range(2)]
    client.login(cashier)
    path = f"/business/{shop.slug}/till/purchase"
    for number, card in enumerate(cards):
        data = {"membership_id": card, "amount": "45", "points": "10" if number else "", "idempotency_key": f"k{number}"}
        if number == 0:
            client.post_form(path, data, htmx=True)  # warm: templates, prebuilt statements
            data["idempotency_key"] = "k-counted"
        counted = _statements_of_post(client, path, data, monkeypatch)
        assert len(counted) <= CHECKOUT_LIMIT, (len(counted), counted)
