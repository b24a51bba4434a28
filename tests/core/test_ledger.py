"""The app starts on both databases and the money path records a purchase."""

from webapp.extensions import db
from webapp.services import ledger
from webapp.services.purchases import PurchaseDraft, record_purchase


def test_purchase_earns_and_spends_points(app, make_merchant, make_member):
    merchant = make_merchant(cashback_bp=1000)
    member = make_member(merchant, points=500)
    outcome = record_purchase(
        db.session, merchant, member,
        PurchaseDraft(membership_id=member.id, amount=10000, points_to_use=300, idempotency_key="k1"),
    )
    db.session.refresh(member)
    assert outcome.purchase.amount_paid == 9700
    assert outcome.purchase.points_earned == 970
    assert member.balance == 500 - 300 + 970
    assert ledger.ledger_sum(db.session, member.id) == member.balance


def test_nightly_check_finds_a_balance_that_drifted_from_its_ledger(app, make_merchant, make_member):
    from sqlalchemy import update

    from webapp.models import Membership

    merchant = make_merchant()
    steady = make_member(merchant, points=100)
    drifted = make_member(merchant, points=100)
    assert ledger.find_balance_mismatches(db.session) == []
    # Simulate corruption from outside the service (the only way a drift could happen).
    db.session.execute(update(Membership).where(Membership.id == drifted.id).values(balance=150))
    db.session.commit()
    assert ledger.find_balance_mismatches(db.session) == [(drifted.id, 150, 100)]
    assert steady.id != drifted.id


def test_guarded_change_refuses_to_overdraw(app, make_merchant, make_member):
    import pytest

    from webapp.errors import InsufficientPoints

    member = make_member(make_merchant(), points=50)
    with pytest.raises(InsufficientPoints):
        ledger.change_balance(db.session, member.id, -51)
    db.session.rollback()
    assert ledger.change_balance(db.session, member.id, -50) == 0
    db.session.commit()
