"""Money and points past 32 bits: a bill up to ``MAX_AMOUNT`` and a busy week's sums are stored whole.

A network in so'm (minor units of 1/100) passes 2,147,483,647 minor units with a bill of about
1,700 dollars, and a busy restaurant in tenge passes it with a week's takings; PostgreSQL's
``integer`` refused such a sale (or the week's figures) with an error.
"""

from __future__ import annotations

from sqlalchemy import func, select

from tests.kit import buy
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, MerchantWeeklyStats, Purchase
from webapp.services import analytics
from webapp.services.purchases import MAX_AMOUNT, refund_purchase

INT32_MAX = 2**31 - 1


def test_the_largest_bill_and_its_points_are_kept_whole(make_merchant, make_member):
    merchant = make_merchant(cashback_bp=1000)
    membership = make_member(merchant)
    first = buy(merchant, membership, MAX_AMOUNT)
    second = buy(merchant, membership, MAX_AMOUNT - 1, points=first.points_earned // 4)

    db.session.expire_all()
    card = db.session.get(Membership, membership.id)
    assert first.points_earned == MAX_AMOUNT // 10 > INT32_MAX
    assert second.points_used == first.points_earned // 4
    assert card.total_spent == 2 * MAX_AMOUNT - 1
    assert card.balance == first.points_earned - second.points_used + second.points_earned
    ledger_sum = db.session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.membership_id == card.id))
    assert ledger_sum == card.balance
    week = db.session.scalar(select(MerchantWeeklyStats).where(MerchantWeeklyStats.merchant_id == merchant.id))
    assert week.revenue == 2 * MAX_AMOUNT - 1 > INT32_MAX
    assert week.points_earned == first.points_earned + second.points_earned
    assert week.points_redeemed == second.points_used
    figures = analytics.dashboard_figures(merchant)
    assert figures.revenue == 2 * MAX_AMOUNT - 1
    # PostgreSQL adds bigints up as numeric: the sums still come back as whole ints.
    assert type(figures.revenue) is int and type(figures.points_issued) is int

    refund_purchase(db.session, merchant, second.id, refunded_by_id=merchant.owner.id)
    db.session.expire_all()
    assert db.session.get(Membership, membership.id).balance == first.points_earned
    assert db.session.get(Purchase, second.id).refunded_at is not None


def test_the_till_takes_a_bill_past_32_bits_and_the_dashboard_shows_it(client, make_user, make_merchant, make_member):
    cashier = make_user(name="Carla Cashier")
    merchant = make_merchant(cashiers=[cashier])
    membership = make_member(merchant)
    client.login(cashier)
    response = client.post_form(
        f"/business/{merchant.slug}/till/purchase",
        {"membership_id": membership.id, "amount": "30000000", "points": "", "idempotency_key": "big-bill-1"},
        htmx=True,
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert "Purchase recorded" in response.get_data(as_text=True)
    purchase = db.session.scalar(select(Purchase).where(Purchase.merchant_id == merchant.id))
    assert purchase.amount == 3_000_000_000 > INT32_MAX  # 30 million tenge, in tiyn

    client.post_form("/auth/logout", {})
    client.login(merchant.owner)
    page = client.get(f"/business/{merchant.slug}/dashboard")
    assert page.status_code == 200
    assert "30,000,000" in page.get_data(as_text=True)
