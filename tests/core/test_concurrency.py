"""Money under concurrency: threads released by a barrier spend one balance, double-submit one
idempotency key and refund one purchase, on SQLite (BEGIN IMMEDIATE) and PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import event, func, select, text

from webapp.errors import AlreadyRefunded, InsufficientPoints, RefundRefused
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, Merchant, Purchase, PurchaseDecline
from webapp.services import ledger
from webapp.services.ledger import Posting
from webapp.services.purchases import PurchaseDraft, record_purchase, refund_purchase

pytestmark = pytest.mark.slow

THREADS = 20
ROUNDS = 20  # every scenario is repeated: one lucky run proves little
ATTEMPTS_PER_THREAD = 10  # 20 threads x 10 = 200 attempts on one balance


def run_in_threads(app, count: int, work: Callable[[int, threading.Barrier], object]) -> list:
    """Run ``work(index, barrier)`` in ``count`` threads, each in its own app context (so its own
    scoped session), all released together by the barrier; return results or raised exceptions."""
    barrier = threading.Barrier(count, timeout=60)
    results: list = [None] * count

    def target(index: int) -> None:
        with app.app_context():
            try:
                results[index] = work(index, barrier)
            except BaseException as error:  # collected and asserted on by the caller
                results[index] = error
                barrier.abort()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    return results


def attempt(merchant_id: int, membership_id: int, draft: PurchaseDraft) -> tuple:
    """One till submission, as a request would make it: fresh session, fresh objects."""
    db.session.remove()
    merchant = db.session.get(Merchant, merchant_id)
    membership = db.session.get(Membership, membership_id)
    try:
        outcome = record_purchase(db.session, merchant, membership, draft)
        return ("ok", draft.points_to_use, outcome.purchase.id, outcome.replayed)
    except InsufficientPoints:
        return ("insufficient", draft.points_to_use)
    except Exception as error:  # anything else (locked, deadlock, 500) fails the test below
        return ("error", repr(error))
    finally:
        # Like a request's teardown: reading the purchase id opened a transaction, and on SQLite
        # that holds the write lock until it ends.
        db.session.remove()


def check_ledger(membership_id: int) -> int:
    """Balance equals ledger sum and is not negative; returns the balance."""
    db.session.commit()
    balance = db.session.scalar(select(Membership.balance).where(Membership.id == membership_id))
    assert balance >= 0
    assert ledger.ledger_sum(db.session, membership_id) == balance
    return balance


def _settle_main_session() -> None:
    """End the test thread's transaction: on SQLite it would hold the write lock (BEGIN IMMEDIATE)."""
    db.session.commit()


def test_200_spends_of_one_balance_never_overdraw(app, make_merchant, make_member):
    merchant = make_merchant(cashback_bp=0, max_points_share_pct=100)
    initial = 1000
    for round_number in range(ROUNDS):
        member = make_member(merchant, points=initial)
        merchant_id, membership_id = merchant.id, member.id
        # Even rounds: every attempt spends 70 points (exactly 14 can succeed). Odd rounds: a mix.
        uniform = round_number % 2 == 0

        def points_for(index: int, step: int, uniform: bool = uniform) -> int:
            return 70 if uniform else 10 + ((index * 7 + step * 13) % 9) * 15

        _settle_main_session()

        def work(index: int, barrier: threading.Barrier, round_number: int = round_number,
                 merchant_id: int = merchant_id, membership_id: int = membership_id,
                 points_for=points_for) -> list:
            outcomes = []
            for step in range(ATTEMPTS_PER_THREAD):
                points = points_for(index, step)
                draft = PurchaseDraft(
                    membership_id=membership_id, amount=points * 2, points_to_use=points,
                    idempotency_key=f"spend-{round_number}-{index}-{step}",
                )
                if step == 0:
                    barrier.wait()
                outcomes.append(attempt(merchant_id, membership_id, draft))
            return outcomes

        results = run_in_threads(app, THREADS, work)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == [], [r for r in failures if not isinstance(r, threading.BrokenBarrierError)]
        outcomes = [outcome for per_thread in results for outcome in per_thread]
        assert len(outcomes) == THREADS * ATTEMPTS_PER_THREAD
        errors = [o for o in outcomes if o[0] == "error"]
        assert errors == [], f"round {round_number}: {errors[:3]}"
        spent = [o[1] for o in outcomes if o[0] == "ok"]
        declined = [o[1] for o in outcomes if o[0] == "insufficient"]
        assert len(spent) + len(declined) == THREADS * ATTEMPTS_PER_THREAD

        balance = check_ledger(membership_id)
        assert balance == initial - sum(spent)
        # The balance only went down, so every declined attempt asked for more than what is left:
        # the successes used up exactly what the balance allowed.
        assert all(points > balance for points in declined), (balance, sorted(declined)[:5])
        if uniform:
            assert len(spent) == initial // 70
            assert balance == initial % 70
        purchases = db.session.scalar(
            select(func.count(Purchase.id)).where(Purchase.membership_id == membership_id)
        )
        assert purchases == len(spent)
        stored_declines = db.session.scalar(
            select(func.count(PurchaseDecline.id)).where(
                PurchaseDecline.merchant_id == merchant_id,
                PurchaseDecline.idempotency_key.like(f"spend-{round_number}-%"),
            )
        )
        assert stored_declines == len(declined)
        visits = db.session.scalar(select(Membership.visits).where(Membership.id == membership_id))
        assert visits == len(spent)


def test_double_submitted_key_records_one_purchase(app, make_merchant, make_member):
    merchant = make_merchant(cashback_bp=1000, max_points_share_pct=50)
    for round_number in range(ROUNDS):
        member = make_member(merchant, points=500)
        merchant_id, membership_id = merchant.id, member.id
        key = f"double-{round_number}"
        _settle_main_session()

        def work(index: int, barrier: threading.Barrier, key: str = key,
                 merchant_id: int = merchant_id, membership_id: int = membership_id) -> tuple:
            draft = PurchaseDraft(
                membership_id=membership_id, amount=4000, points_to_use=300, idempotency_key=key
            )
            barrier.wait()
            return attempt(merchant_id, membership_id, draft)

        results = run_in_threads(app, THREADS, work)
        assert all(isinstance(r, tuple) and r[0] == "ok" for r in results), results
        purchase_ids = {r[2] for r in results}
        assert len(purchase_ids) == 1, f"round {round_number}: {purchase_ids}"
        assert sum(1 for r in results if not r[3]) == 1, "exactly one submission is not a replay"

        purchases = db.session.scalars(
            select(Purchase).where(Purchase.merchant_id == merchant_id, Purchase.idempotency_key == key)
        ).all()
        assert [p.id for p in purchases] == list(purchase_ids)
        # 4000 - 300 paid in money, 10 % cashback = 370 points earned.
        assert check_ledger(membership_id) == 500 - 300 + 370
        entries = db.session.scalar(
            select(func.count(LedgerEntry.id)).where(LedgerEntry.purchase_id == purchases[0].id)
        )
        assert entries == 2
        assert db.session.scalar(
            select(func.count(PurchaseDecline.id)).where(PurchaseDecline.idempotency_key == key)
        ) == 0


def test_double_submitted_declined_key_is_declined_alike(app, make_merchant, make_member):
    """A declined key is declined for every twin, stored once, and never half-charged."""
    merchant = make_merchant(cashback_bp=1000, max_points_share_pct=50)
    for round_number in range(ROUNDS):
        member = make_member(merchant, points=100)
        merchant_id, membership_id = merchant.id, member.id
        key = f"declined-{round_number}"
        _settle_main_session()

        def work(index: int, barrier: threading.Barrier, key: str = key,
                 merchant_id: int = merchant_id, membership_id: int = membership_id) -> tuple:
            draft = PurchaseDraft(
                membership_id=membership_id, amount=4000, points_to_use=300, idempotency_key=key
            )
            barrier.wait()
            return attempt(merchant_id, membership_id, draft)

        results = run_in_threads(app, THREADS, work)
        assert results == [("insufficient", 300)] * THREADS, results
        assert check_ledger(membership_id) == 100
        assert db.session.scalar(
            select(func.count(PurchaseDecline.id)).where(
                PurchaseDecline.merchant_id == merchant_id, PurchaseDecline.idempotency_key == key
            )
        ) == 1
        assert db.session.scalar(
            select(func.count(Purchase.id)).where(Purchase.membership_id == membership_id)
        ) == 0


def _someone_waits_for_a_lock() -> bool:
    waiting = db.session.scalar(text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ))
    db.session.commit()
    return waiting > 0


@pytest.mark.parametrize("a_pauses_at", ["commit", "update"])
def test_twins_get_one_outcome_when_the_balance_grows_between_them(
    app, backend, make_merchant, make_member, a_pauses_at
):
    """Twin submissions of one key straddle a concurrent credit: B validates while the balance is
    too low, a credit lands, then A validates against the higher balance. Whatever the order of
    their writes, both must answer alike and the key must have one stored outcome.

    A pauses before its commit (it holds the card's row lock: B must replay A's purchase) or
    before its balance update (B stores its decline first: A must then decline too). Session
    events force the interleaving, so the test is deterministic."""
    merchant = make_merchant(cashback_bp=0, max_points_share_pct=100)
    member = make_member(merchant, points=50)
    merchant_id, membership_id = merchant.id, member.id
    _settle_main_session()
    b_paused, b_go, a_paused, a_go = (threading.Event() for _ in range(4))
    outcomes: dict[str, tuple] = {}

    def submit(name: str, paused: threading.Event, go: threading.Event) -> None:
        with app.app_context():
            session = db.session()
            fired: list[bool] = []

            def pause(*_args) -> None:
                if not fired:
                    fired.append(True)
                    paused.set()
                    go.wait(30)

            if name == "B":
                event.listen(session, "after_rollback", pause)  # about to store its decline
            elif a_pauses_at == "commit":
                event.listen(session, "before_commit", pause)
            else:
                event.listen(session, "do_orm_execute", lambda state: state.is_update and pause())
            draft = PurchaseDraft(membership_id=membership_id, amount=100, points_to_use=60,
                                  idempotency_key="twin")
            try:
                outcome = record_purchase(
                    db.session, db.session.get(Merchant, merchant_id),
                    db.session.get(Membership, membership_id), draft,
                )
                outcomes[name] = ("ok", outcome.purchase.id, outcome.replayed)
            except InsufficientPoints as error:
                outcomes[name] = ("insufficient", error.message)
            except Exception as error:
                outcomes[name] = ("error", repr(error))
            finally:
                db.session.remove()

    twin_b = threading.Thread(target=submit, args=("B", b_paused, b_go), daemon=True)
    twin_b.start()
    assert b_paused.wait(30), f"B never reached its decline: {outcomes}"
    with app.app_context():  # another till credits 20 points: the balance is now 70
        ledger.post(db.session, [Posting(membership_id, merchant_id, "adjust", 20, "Bonus")])
        db.session.commit()
        db.session.remove()
    twin_a = threading.Thread(target=submit, args=("A", a_paused, a_go), daemon=True)
    twin_a.start()
    assert a_paused.wait(30), f"A never paused: {outcomes}"
    b_go.set()
    if backend == "postgres":
        # Let B finish, or block on a lock A holds; either way B has made its move.
        deadline = time.monotonic() + 30
        while twin_b.is_alive() and not _someone_waits_for_a_lock():
            assert time.monotonic() < deadline, "B neither finished nor waited for A"
            twin_b.join(0.01)
    # On SQLite A's BEGIN IMMEDIATE holds the write lock from its first read: B waits for A.
    a_go.set()
    twin_a.join(30)
    twin_b.join(30)
    assert not twin_a.is_alive() and not twin_b.is_alive()

    errors = [o for o in outcomes.values() if o[0] == "error"]
    assert errors == [], outcomes
    db.session.commit()
    purchases = db.session.scalar(
        select(func.count(Purchase.id)).where(Purchase.idempotency_key == "twin")
    )
    declines = db.session.scalar(
        select(func.count(PurchaseDecline.id)).where(PurchaseDecline.idempotency_key == "twin")
    )
    assert purchases + declines == 1, (purchases, declines, outcomes)
    if purchases:
        assert outcomes["A"][:1] == outcomes["B"][:1] == ("ok",), outcomes
        assert outcomes["A"][1] == outcomes["B"][1], outcomes
        assert check_ledger(membership_id) == 10
    else:
        assert outcomes["A"] == outcomes["B"], outcomes
        assert outcomes["A"][0] == "insufficient", outcomes
        assert check_ledger(membership_id) == 70
    expected_winner = "decline" if backend == "postgres" and a_pauses_at == "update" else "purchase"
    assert (purchases and "purchase" or "decline") == expected_winner, outcomes


def test_mixed_traffic_on_one_card_keeps_the_books(app, make_merchant, make_member):
    """Purchases, refunds and ledger debits hit one card at once: no deadlock, no lock error,
    and balance, ledger, visits and spend agree afterwards."""
    merchant = make_merchant(cashback_bp=1000, max_points_share_pct=50)
    for round_number in range(3):
        member = make_member(merchant, points=300)
        merchant_id, membership_id = merchant.id, member.id
        _settle_main_session()

        def work(index: int, barrier: threading.Barrier, round_number: int = round_number,
                 merchant_id: int = merchant_id, membership_id: int = membership_id) -> list:
            chooser = random.Random(round_number * 1000 + index)  # deterministic per thread
            mine: list[int] = []
            log = []
            barrier.wait()
            for step in range(ATTEMPTS_PER_THREAD):
                action = chooser.choice(["buy", "buy", "refund", "debit"])
                if action == "buy":
                    draft = PurchaseDraft(
                        membership_id=membership_id, amount=chooser.randrange(100, 2000),
                        points_to_use=chooser.choice([0, 0, 20, 50]),
                        idempotency_key=f"mixed-{round_number}-{index}-{step}",
                    )
                    outcome = attempt(merchant_id, membership_id, draft)
                    if outcome[0] == "ok":
                        mine.append(outcome[2])
                    log.append(outcome[0])
                    continue
                db.session.remove()
                try:
                    if action == "refund" and mine:
                        merchant = db.session.get(Merchant, merchant_id)
                        refund_purchase(db.session, merchant, mine.pop(0), None)
                    elif action == "debit":
                        ledger.post(db.session, [Posting(membership_id, merchant_id, "adjust", -15, "Fix")])
                        db.session.commit()
                    log.append("ok")
                except (InsufficientPoints, RefundRefused):
                    db.session.rollback()
                    log.append("declined")
                except Exception as error:
                    db.session.rollback()
                    log.append(f"error {error!r}")
                finally:
                    db.session.remove()
            return log

        results = run_in_threads(app, THREADS, work)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == [], failures
        errors = [entry for log in results for entry in log if entry.startswith("error")]
        assert errors == [], errors[:3]
        balance = check_ledger(membership_id)
        row = db.session.get(Membership, membership_id)
        db.session.refresh(row)
        live = db.session.execute(
            select(func.count(Purchase.id), func.coalesce(func.sum(Purchase.amount), 0)).where(
                Purchase.membership_id == membership_id, Purchase.refunded_at.is_(None)
            )
        ).one()
        assert (row.visits, row.total_spent) == (live[0], live[1])
        assert row.balance == balance


def test_concurrent_refunds_of_one_purchase_refund_once(app, make_merchant, make_member):
    merchant = make_merchant(cashback_bp=1000)
    owner_id = merchant.owner.id
    for round_number in range(5):
        member = make_member(merchant, points=1000)
        outcome = record_purchase(
            db.session, merchant, member,
            PurchaseDraft(membership_id=member.id, amount=5000, points_to_use=200,
                          idempotency_key=f"refund-{round_number}"),
        )
        merchant_id, membership_id, purchase_id = merchant.id, member.id, outcome.purchase.id
        assert check_ledger(membership_id) == 1000 - 200 + 480
        _settle_main_session()

        def work(index: int, barrier: threading.Barrier, merchant_id: int = merchant_id,
                 purchase_id: int = purchase_id) -> str:
            merchant = db.session.get(Merchant, merchant_id)
            db.session.commit()  # wait at the barrier without holding SQLite's write lock
            barrier.wait()
            try:
                refund_purchase(db.session, merchant, purchase_id, owner_id)
            except AlreadyRefunded:
                return "already"
            except Exception as error:
                return f"error {error!r}"
            return "ok"

        results = run_in_threads(app, 10, work)
        assert sorted(results) == ["already"] * 9 + ["ok"], results
        assert check_ledger(membership_id) == 1000
        member_row = db.session.get(Membership, membership_id)
        assert (member_row.visits, member_row.total_spent) == (0, 0)
        refunds = db.session.scalar(
            select(func.count(LedgerEntry.id)).where(
                LedgerEntry.purchase_id == purchase_id, LedgerEntry.kind == "refund"
            )
        )
        assert refunds == 2
