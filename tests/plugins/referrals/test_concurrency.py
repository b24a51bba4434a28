"""20 workers paying the same purchase's rewards at once: one per (purchase, beneficiary, level)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from plugins.referrals import services
from plugins.referrals.models import MonthlyTotal, Reward
from tests.kit import disable_plugins, enable_plugins
from tests.plugins.loyalty_kit import buy, join
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, Merchant, Purchase
from webapp.plugins import plugin_settings
from webapp.services.ledger import find_balance_mismatches

THREADS = 20
REPEATS = 3


pytestmark = pytest.mark.usefixtures("patient_sqlite")


def test_twenty_workers_pay_each_reward_exactly_once(app, make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals", level1_bp=300, level2_bp=200, level3_bp=100, signup_bonus=25, monthly_cap=10**9)
    members = [join(cafe, make_user())]
    for _ in range(4):  # a chain of five: the buyer has four referrers, only three may earn
        members.append(join(cafe, make_user(), ref=services.ensure_code(db.session, members[-1])))
    db.session.commit()
    buyer = members[-1]
    for _round in range(REPEATS):
        # Record the purchase with the plugin off, then let 20 workers pay its rewards together.
        disable_plugins(cafe, "referrals")
        purchase_id = buy(cafe, buyer, amount=100_000).id
        enable_plugins(cafe, "referrals")
        cafe_id = cafe.id
        settings = plugin_settings(cafe, "referrals")
        db.session.commit()  # the test's own session must not hold SQLite's write lock
        barrier = threading.Barrier(THREADS)
        paid: list[int] = []
        errors: list[Exception] = []
        lock = threading.Lock()

        def worker() -> None:
            with app.app_context():
                barrier.wait()
                try:
                    merchant = db.session.get(Merchant, cafe_id)
                    purchase = db.session.get(Purchase, purchase_id)
                    amount = services.pay_rewards(db.session, merchant, purchase, settings)
                    db.session.commit()
                    with lock:
                        paid.append(amount)
                except Exception as error:  # asserted on below
                    db.session.rollback()
                    with lock:
                        errors.append(error)
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len([amount for amount in paid if amount]) == 1
        rows = db.session.execute(
            select(Reward.beneficiary_membership_id, Reward.depth, Reward.amount)
            .where(Reward.purchase_id == purchase_id).order_by(Reward.depth)
        ).all()
        expected = [(members[3].id, 1, 3000), (members[2].id, 2, 2000), (members[1].id, 3, 1000)]
        if _round == 0:
            expected.insert(0, (buyer.id, 0, 25))  # the friend's sign-up bonus, on the first purchase only
        assert [tuple(row) for row in rows] == expected
        entries = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.purchase_id == purchase_id, LedgerEntry.kind == "referral"))
        assert entries == len(expected)
    assert db.session.scalar(select(Membership.balance).where(Membership.id == members[0].id)) == 0
    assert db.session.scalar(select(Membership.balance).where(Membership.id == members[3].id)) == 3000 * REPEATS
    assert find_balance_mismatches(db.session) == []
    # The monthly cap counts exactly what was paid: the workers that lost the race gave back
    # what they had reserved.
    reserved = dict(db.session.execute(
        select(MonthlyTotal.membership_id, func.sum(MonthlyTotal.total)).group_by(MonthlyTotal.membership_id)
    ).all())
    paid = dict(db.session.execute(
        select(Reward.beneficiary_membership_id, func.sum(Reward.amount))
        .where(Reward.depth > 0, Reward.reversed_at.is_(None)).group_by(Reward.beneficiary_membership_id)
    ).all())
    assert {k: v for k, v in reserved.items() if v} == paid == {
        members[3].id: 3000 * REPEATS, members[2].id: 2000 * REPEATS, members[1].id: 1000 * REPEATS,
    }
