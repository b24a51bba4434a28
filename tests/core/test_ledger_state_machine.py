"""A Hypothesis state machine drives the purchase and ledger services against a Python model:
earn, redeem, refund, retries with the same key (declines included), the same key with other
details, credits and debits, suspension; balance == ledger sum == model after every step."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from webapp.errors import (
    AlreadyRefunded,
    IdempotencyConflict,
    InsufficientPoints,
    NeighbourlyError,
    PurchaseDeclined,
    RefundRefused,
    ValidationFailed,
)
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, Merchant, Purchase, PurchaseDecline
from webapp.services import ledger
from webapp.services.ledger import Posting
from webapp.services.purchases import MAX_AMOUNT, PurchaseDraft, record_purchase, refund_purchase

MEMBERS = 2
amounts = st.one_of(
    st.integers(min_value=1, max_value=50_000),
    st.sampled_from([1, 99, 100, 101, 10_000]),
)
points = st.one_of(st.integers(min_value=0, max_value=3_000), st.sampled_from([0, 1]))


class LedgerMachine(RuleBasedStateMachine):
    """Each instance (one Hypothesis example) works on its own network, merchant and members,
    so examples sharing one database never see each other's rows."""

    def __init__(self, make_network, make_merchant, make_member) -> None:
        super().__init__()
        self._factories = (make_network, make_merchant, make_member)
        self.keys: dict[str, dict] = {}  # key -> draft fields, member index and first outcome
        self.purchases: list[dict] = []  # successful purchases: id, member index, effect
        self.counter = 0

    # ------------------------------------------------------------------ set-up

    @initialize(
        cashback_bp=st.sampled_from([0, 300, 500, 1000, 2500, 10000]),
        share_pct=st.sampled_from([0, 30, 50, 100]),
        point_value=st.sampled_from([1, 1, 100]),
        starting=st.lists(st.integers(min_value=0, max_value=2_000), min_size=MEMBERS, max_size=MEMBERS),
    )
    def set_up(self, cashback_bp, share_pct, point_value, starting) -> None:
        make_network, make_merchant, make_member = self._factories
        network = make_network()
        network.point_value_minor = point_value
        db.session.commit()
        merchant = make_merchant(
            cashback_bp=cashback_bp, max_points_share_pct=share_pct, in_network=network
        )
        self.merchant_id = merchant.id
        self.owner_id = merchant.owner.id
        self.point_value = point_value
        self.cashback_bp = cashback_bp
        self.share_pct = share_pct
        self.active = True
        self.member_ids = []
        self.model = []  # per member: balance, visits, total_spent
        for start in starting:
            member = make_member(merchant, points=start)
            self.member_ids.append(member.id)
            self.model.append({"balance": start, "visits": 0, "total_spent": 0})
        self._end_request()

    def _end_request(self) -> None:
        """What a request's teardown does: the next step starts with a fresh session."""
        db.session.remove()

    def _merchant(self) -> Merchant:
        return db.session.get(Merchant, self.merchant_id)

    def _new_key(self) -> str:
        self.counter += 1
        return f"m{self.merchant_id}-k{self.counter}"

    def _written_rows(self) -> tuple[int, int, int]:
        merchant_id = self.merchant_id
        return (
            db.session.scalar(select(func.count(Purchase.id)).where(Purchase.merchant_id == merchant_id)),
            db.session.scalar(
                select(func.count(PurchaseDecline.id)).where(PurchaseDecline.merchant_id == merchant_id)
            ),
            db.session.scalar(
                select(func.count(LedgerEntry.id)).where(LedgerEntry.merchant_id == merchant_id)
            ),
        )

    # ------------------------------------------------------------------ the model

    def _expected(self, member: int, amount: int, points_to_use: int):
        """What the service must answer: an error class, or the points earned."""
        if amount <= 0 or amount > MAX_AMOUNT or points_to_use < 0:
            return ValidationFailed
        if not self.active:
            return PurchaseDeclined
        limit = amount * self.share_pct // 100 // self.point_value
        if points_to_use > limit:
            return PurchaseDeclined
        if points_to_use > self.model[member]["balance"]:
            return InsufficientPoints
        paid = amount - points_to_use * self.point_value
        return paid * self.cashback_bp // 10000 // self.point_value

    def _submit(self, member: int, amount: int, points_to_use: int, key: str):
        membership = db.session.get(Membership, self.member_ids[member])
        draft = PurchaseDraft(
            membership_id=membership.id, amount=amount, points_to_use=points_to_use,
            idempotency_key=key,
        )
        try:
            outcome = record_purchase(db.session, self._merchant(), membership, draft)
        except NeighbourlyError as error:
            return error
        return outcome

    def _purchase(self, member: int, amount: int, points_to_use: int) -> None:
        key = self._new_key()
        expected = self._expected(member, amount, points_to_use)
        result = self._submit(member, amount, points_to_use, key)
        entry = {"member": member, "amount": amount, "points": points_to_use}
        if isinstance(expected, int):
            assert not isinstance(result, Exception), f"expected success, got {result!r}"
            assert not result.replayed
            purchase = result.purchase
            assert (purchase.points_used, purchase.points_earned) == (points_to_use, expected)
            state = self.model[member]
            state["balance"] += expected - points_to_use
            state["visits"] += 1
            state["total_spent"] += amount
            entry["purchase_id"] = purchase.id
            self.purchases.append(
                {"id": purchase.id, "member": member, "amount": amount, "points": points_to_use,
                 "earned": expected, "refunded": False}
            )
        else:
            assert type(result) is expected, f"expected {expected.__name__}, got {result!r}"
            entry["error"] = (type(result), result.message)
        self.keys[key] = entry
        self._end_request()

    # ------------------------------------------------------------------ rules

    @rule(member=st.integers(0, MEMBERS - 1), amount=amounts)
    def earn(self, member, amount) -> None:
        self._purchase(member, amount, 0)

    @rule(member=st.integers(0, MEMBERS - 1), amount=amounts, points_to_use=points)
    def redeem(self, member, amount, points_to_use) -> None:
        self._purchase(member, amount, points_to_use)

    @rule(member=st.integers(0, MEMBERS - 1), amount=amounts, share=st.floats(0, 1))
    def redeem_within_limits(self, member, amount, share) -> None:
        """Spend a share of what is allowed, so successful redemptions are common."""
        limit = min(amount * self.share_pct // 100 // self.point_value, self.model[member]["balance"])
        self._purchase(member, amount, int(limit * share))

    @rule(member=st.integers(0, MEMBERS - 1), amount=st.sampled_from([0, -5, MAX_AMOUNT + 1]))
    def invalid_amount(self, member, amount) -> None:
        self._purchase(member, amount, 0)

    @precondition(lambda self: self.keys)
    @rule(index=st.integers(min_value=0))
    def retry_same_key(self, index) -> None:
        """A double click or network retry replays the first outcome, whatever happened since."""
        key = list(self.keys)[index % len(self.keys)]
        first = self.keys[key]
        before = self._written_rows()
        result = self._submit(first["member"], first["amount"], first["points"], key)
        if "purchase_id" in first:
            assert not isinstance(result, Exception), f"replay became {result!r}"
            assert result.replayed and result.purchase.id == first["purchase_id"]
        else:
            error_class, message = first["error"]
            assert type(result) is error_class, f"replay of {error_class.__name__} became {result!r}"
            assert result.message == message
        self._end_request()
        assert self._written_rows() == before

    @precondition(lambda self: self.keys)
    @rule(index=st.integers(min_value=0), extra=st.integers(min_value=1, max_value=1000),
          change=st.sampled_from(["amount", "points"]))
    def same_key_other_details(self, index, extra, change) -> None:
        key = list(self.keys)[index % len(self.keys)]
        first = self.keys[key]
        amount, points_to_use = first["amount"], first["points"]
        if change == "amount":
            amount += extra
        else:
            points_to_use += extra
        before = self._written_rows()
        result = self._submit(first["member"], amount, points_to_use, key)
        assert isinstance(result, IdempotencyConflict), f"expected a conflict, got {result!r}"
        self._end_request()
        assert self._written_rows() == before

    @precondition(lambda self: self.purchases)
    @rule(index=st.integers(min_value=0))
    def refund(self, index) -> None:
        purchase = self.purchases[index % len(self.purchases)]
        state = self.model[purchase["member"]]
        delta = purchase["points"] - purchase["earned"]
        try:
            refund_purchase(db.session, self._merchant(), purchase["id"], self.owner_id)
        except (AlreadyRefunded, RefundRefused) as error:
            result = type(error)
        else:
            result = None
        if purchase["refunded"]:
            assert result is AlreadyRefunded
        elif state["balance"] + delta < 0:
            assert result is RefundRefused
            refunded_at = db.session.scalar(
                select(Purchase.refunded_at).where(Purchase.id == purchase["id"])
            )
            assert refunded_at is None, "a refused refund must leave the purchase refundable"
        else:
            assert result is None, f"refund failed with {result}"
            purchase["refunded"] = True
            state["balance"] += delta
            state["visits"] -= 1
            state["total_spent"] -= purchase["amount"]
        self._end_request()

    @rule(member=st.integers(0, MEMBERS - 1), amount=st.integers(min_value=1, max_value=2_000))
    def credit(self, member, amount) -> None:
        """A reward or manual adjustment through the guarded ledger service."""
        ledger.post(db.session, [Posting(self.member_ids[member], self.merchant_id, "adjust", amount, "Bonus")])
        db.session.commit()
        self.model[member]["balance"] += amount
        self._end_request()

    @rule(member=st.integers(0, MEMBERS - 1), amount=st.integers(min_value=1, max_value=3_000))
    def debit(self, member, amount) -> None:
        postings = [Posting(self.member_ids[member], self.merchant_id, "adjust", -amount, "Correction")]
        try:
            ledger.post(db.session, postings)
            db.session.commit()
        except InsufficientPoints:
            db.session.rollback()
            assert amount > self.model[member]["balance"]
        else:
            assert amount <= self.model[member]["balance"]
            self.model[member]["balance"] -= amount
        self._end_request()

    @rule(active=st.booleans())
    def set_active(self, active) -> None:
        """Suspension declines new sales; retries of keys decided earlier still replay."""
        merchant = self._merchant()
        merchant.status = "active" if active else "suspended"
        db.session.commit()
        self.active = active
        self._end_request()

    # ------------------------------------------------------------------ invariants

    @invariant()
    def balances_match_ledger_and_model(self) -> None:
        if not hasattr(self, "member_ids"):
            return
        for member, membership_id in enumerate(self.member_ids):
            row = db.session.execute(
                select(Membership.balance, Membership.visits, Membership.total_spent).where(
                    Membership.id == membership_id
                )
            ).one()
            expected = self.model[member]
            assert row.balance >= 0
            assert row.balance == ledger.ledger_sum(db.session, membership_id) == expected["balance"]
            assert (row.visits, row.total_spent) == (expected["visits"], expected["total_spent"])
        self._end_request()


@pytest.mark.slow
def test_ledger_state_machine(app, make_network, make_merchant, make_member):
    run_state_machine_as_test(
        lambda: LedgerMachine(make_network, make_merchant, make_member),
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
