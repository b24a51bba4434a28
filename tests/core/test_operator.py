"""Network operator pages: approving, declining, suspending merchants and the network's figures."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.kit import buy
from webapp.errors import PurchaseDeclined
from webapp.extensions import db
from webapp.models import Merchant
from webapp.services import analytics
from webapp.services.ledger import ledger_sum


def text_of(response) -> str:
    return response.get_data(as_text=True)


def test_application_is_approved_by_the_operator(client, make_user, network):
    owner = make_user(name="Applicant")
    client.login(owner)
    client.post_form("/business/apply", {
        "network": str(network.id), "name": "Flower Corner", "category": "flowers",
        "cashback": "5", "share": "50",
    })
    client.post_form("/auth/logout")

    client.login(network.operator)
    page = text_of(client.get(f"/operator/{network.slug}/"))
    assert "Flower Corner" in page
    assert "Waiting for approval (1)" in page

    merchant = db.session.scalar(select(Merchant).where(Merchant.name == "Flower Corner"))
    assert merchant.status == "pending"
    response = client.post_form(f"/operator/{network.slug}/merchants/{merchant.id}/approve")
    assert response.status_code == 303
    db.session.refresh(merchant)
    assert merchant.status == "active"
    assert merchant.approved_at is not None
    page = text_of(client.get(f"/operator/{network.slug}/", query_string={"status": "active"}))
    assert "Flower Corner" in page and "Active (1)" in page
    # Approving twice is a conflict, not a 500.
    assert client.post_form(f"/operator/{network.slug}/merchants/{merchant.id}/approve").status_code == 409

    client.post_form("/auth/logout")
    client.login(owner)
    home = text_of(client.get("/business/"))
    assert "waiting for approval" not in home
    assert f"/business/{merchant.slug}/till" in home


def test_decline_needs_a_reason_and_the_owner_sees_it(client, network, make_merchant):
    merchant = make_merchant(status="pending")
    client.login(network.operator)
    url = f"/operator/{network.slug}/merchants/{merchant.id}/decline"
    response = client.post_form(url, {"reason": "   "})
    assert response.status_code == 422
    assert "Say why the application is declined" in text_of(response)
    db.session.refresh(merchant)
    assert merchant.status == "pending"

    response = client.post_form(url, {"reason": "Outside the neighbourhood"})
    assert response.status_code == 303
    db.session.refresh(merchant)
    assert (merchant.status, merchant.decline_reason) == ("declined", "Outside the neighbourhood")

    client.post_form("/auth/logout")
    client.login(merchant.owner)
    assert "Outside the neighbourhood" in text_of(client.get("/business/"))


def test_suspend_keeps_balances_and_stops_purchases_until_reinstated(
    client, network, make_merchant, make_member
):
    merchant = make_merchant()
    membership = make_member(merchant, points=300)
    client.login(network.operator)
    base = f"/operator/{network.slug}/merchants/{merchant.id}"
    assert client.post_form(f"{base}/suspend", {"reason": ""}).status_code == 422
    db.session.refresh(merchant)
    assert merchant.status == "active"

    # First a confirmation that says what happens; nothing is written yet (no JavaScript needed).
    asked = client.post_form(f"{base}/suspend", {"reason": "Complaints"})
    body = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "<html" in body
    assert f"Suspend {merchant.name}?" in body and "Complaints" in body and 'name="confirmed" value="1"' in body
    db.session.refresh(merchant)
    assert merchant.status == "active"
    # With htmx the same question replaces the business's row in place.
    inline = client.post_form(f"{base}/suspend", {"reason": "Complaints"}, htmx=True).get_data(as_text=True)
    assert "<html" not in inline and f"Yes, suspend {merchant.name}" in inline
    db.session.refresh(merchant)
    assert merchant.status == "active"

    assert client.post_form(f"{base}/suspend", {"reason": "Complaints", "confirmed": "1"}).status_code == 303
    db.session.refresh(merchant)
    assert merchant.status == "suspended"
    with pytest.raises(PurchaseDeclined):
        buy(merchant, membership, 10000)
    db.session.refresh(membership)
    assert membership.balance == 300 == ledger_sum(db.session, membership.id)
    page = text_of(client.get(f"/operator/{network.slug}/", query_string={"status": "suspended"}))
    assert merchant.name in page and "Complaints" in page

    assert client.post_form(f"{base}/reinstate").status_code == 303
    db.session.refresh(merchant)
    assert merchant.status == "active"
    assert buy(merchant, membership, 10000).amount == 10000
    # Reinstating an active merchant is refused with a message.
    assert client.post_form(f"{base}/reinstate").status_code == 409


def test_non_operators_get_404(client, make_user, network, make_merchant, make_network):
    merchant = make_merchant(status="pending")
    pages = [
        ("get", f"/operator/{network.slug}/"),
        ("post", f"/operator/{network.slug}/merchants/{merchant.id}/approve"),
        ("post", f"/operator/{network.slug}/merchants/{merchant.id}/decline"),
        ("post", f"/operator/{network.slug}/merchants/{merchant.id}/suspend"),
        ("post", f"/operator/{network.slug}/merchants/{merchant.id}/reinstate"),
    ]
    # The merchant's own owner and the operator of another network are strangers here.
    other_operator = make_network().operator
    for person in (merchant.owner, other_operator, make_user()):
        client.login(person)
        for method, url in pages:
            response = client.get(url) if method == "get" else client.post_form(url, {"reason": "x"})
            assert response.status_code == 404, (person.name, url)
        client.post_form("/auth/logout")
    db.session.refresh(merchant)
    assert merchant.status == "pending"
    assert client.get(f"/operator/{network.slug}/").status_code == 302  # anonymous: sign in first


def test_operator_cannot_reach_merchants_of_another_network(client, network, make_network, make_merchant):
    elsewhere = make_network()
    foreign = make_merchant(status="pending", in_network=elsewhere)
    client.login(network.operator)
    response = client.post_form(f"/operator/{network.slug}/merchants/{foreign.id}/approve")
    assert response.status_code == 404
    db.session.refresh(foreign)
    assert foreign.status == "pending"
    assert foreign.name not in text_of(client.get(f"/operator/{network.slug}/", query_string={"status": "pending"}))


def test_operator_home_lists_operated_networks_and_business_home_links_to_it(client, network, make_network):
    make_network(name="Another Street")
    client.login(network.operator)
    page = text_of(client.get("/operator/"))
    assert network.name in page and "Another Street" not in page
    assert "/operator/" in text_of(client.get("/business/"))


def test_operator_index_empty_state_for_non_operators(client, make_user):
    client.login(make_user())
    page = text_of(client.get("/operator/"))
    assert "You do not operate a network" in page
    assert 'href="/operator/"' not in text_of(client.get("/business/"))


def test_network_figures_sum_weekly_rows(client, network, make_merchant, make_member):
    first = make_merchant(cashback_bp=1000)
    second = make_merchant(cashback_bp=500)
    make_merchant(status="pending")
    a, b = make_member(first), make_member(second)
    buy(first, a, 100000)
    buy(first, a, 50000, points=1000)
    purchase = buy(second, b, 200000)
    from webapp.services.purchases import refund_purchase

    refund_purchase(db.session, second, purchase.id, None)

    figures = analytics.network_figures(network, db.session)
    assert figures.merchants_by_status == {"pending": 1, "active": 2, "declined": 0, "suspended": 0}
    assert figures.customer_cards == 2
    assert figures.purchases == 2
    assert figures.revenue == 150000
    db.session.refresh(a)
    db.session.refresh(b)
    assert figures.points_outstanding == a.balance + b.balance
    assert sum(week.revenue for week in figures.weeks) == 150000

    client.login(network.operator)
    page = text_of(client.get(f"/operator/{network.slug}/"))
    assert "₸1,500" in page
    assert "Revenue per week" in page
