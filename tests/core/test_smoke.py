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
