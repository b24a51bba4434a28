"""``ledger.post`` with several cards: one guarded UPDATE moves every balance, all or none, and
concurrent postings to overlapping cards (in any order) keep balance == ledger without deadlocks,
on SQLite (BEGIN IMMEDIATE) and PostgreSQL (rows locked in ascending id order)."""

from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import func, select

from tests.core.test_concurrency import run_in_threads
from webapp.errors import InsufficientPoints
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, MerchantWeeklyStats
from webapp.services import ledger
from webapp.services.ledger import Posting

THREADS = 12
ATTEMPTS_PER_THREAD = 15
CARDS = 5


def balances(ids: list[int]) -> dict[int, int]:
    return dict(db.session.execute(select(Membership.id, Membership.balance).where(Membership.id.in_(ids))).all())


def test_a_refused_posting_changes_no_card(app, make_merchant, make_member):
    merchant = make_merchant()
    rich, poor, other = (make_member(merchant, points=points) for points in (500, 30, 70))
    ids = [rich.id, poor.id, other.id]
    db.session.commit()
    before = balances(ids)
    entries = db.session.scalar(select(func.count(LedgerEntry.id)))
    postings = [
        Posting(rich.id, merchant.id, "adjust", 40, "Credit"),
        Posting(other.id, merchant.id, "adjust", -20, "Debit"),
        Posting(poor.id, merchant.id, "adjust", -31, "One point too many"),
    ]
    with pytest.raises(InsufficientPoints):
        ledger.post(db.session, postings)
    # Read inside the same transaction, before any rollback: the cards the statement could
    # change were changed back, so nothing half-applied is left for a caller that forgets.
    assert balances(ids) == before
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == entries
    db.session.rollback()
    ledger.post(db.session, postings[:2] + [Posting(poor.id, merchant.id, "adjust", -30, "Exactly all")])
    db.session.commit()
    assert balances(ids) == {rich.id: 540, poor.id: 0, other.id: 50}
    for membership_id in ids:
        assert ledger.ledger_sum(db.session, membership_id) == balances(ids)[membership_id]


def test_weekly_figures_of_a_batch_are_summed_into_one_row(app, make_merchant, make_member):
    merchant = make_merchant()
    first, second = make_member(merchant), make_member(merchant)
    db.session.commit()
    with ledger.batched_weekly_stats(db.session):
        ledger.post(db.session, [Posting(first.id, merchant.id, "adjust", 25, "A")])
        ledger.post(db.session, [Posting(second.id, merchant.id, "adjust", 15, "B")])
    db.session.commit()
    assert db.session.scalar(
        select(func.sum(MerchantWeeklyStats.points_other)).where(MerchantWeeklyStats.merchant_id == merchant.id)
    ) == 40
    with pytest.raises(RuntimeError), ledger.batched_weekly_stats(db.session):
        ledger.post(db.session, [Posting(first.id, merchant.id, "adjust", 5, "C")])
        raise RuntimeError("the caller fails: nothing of the batch is written")
    db.session.rollback()
    assert db.session.scalar(
        select(func.sum(MerchantWeeklyStats.points_other)).where(MerchantWeeklyStats.merchant_id == merchant.id)
    ) == 40


@pytest.mark.slow
@pytest.mark.usefixtures("patient_sqlite")  # many writers on a two-core machine
def test_concurrent_postings_to_overlapping_cards_keep_the_books(app, make_merchant, make_member):
    merchant = make_merchant()
    ids = [make_member(merchant, points=300).id for _ in range(CARDS)]
    merchant_id = merchant.id
    db.session.commit()

    def work(index: int, barrier: threading.Barrier) -> list:
        chooser = random.Random(index)  # deterministic per thread
        log = []
        barrier.wait()
        for _step in range(ATTEMPTS_PER_THREAD):
            cards = chooser.sample(ids, chooser.randint(2, CARDS))  # any order, any overlap
            postings = [
                Posting(card, merchant_id, "adjust", chooser.choice([-120, -60, -25, 30, 80]), "Mixed")
                for card in cards
            ]
            try:
                ledger.post(db.session, postings)
                db.session.commit()
                log.append(("ok", postings))
            except InsufficientPoints:
                db.session.rollback()
                log.append(("refused", postings))
            except Exception as error:  # a deadlock or lock error fails the test below
                db.session.rollback()
                log.append(("error", repr(error)))
            finally:
                db.session.remove()
        return log

    results = run_in_threads(app, THREADS, work)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == [], failures
    outcomes = [entry for log in results for entry in log]
    errors = [entry for entry in outcomes if entry[0] == "error"]
    assert errors == [], errors[:3]
    assert any(entry[0] == "refused" for entry in outcomes)
    assert any(entry[0] == "ok" for entry in outcomes)
    db.session.commit()
    expected = dict.fromkeys(ids, 300)
    for status, postings in outcomes:
        if status == "ok":  # only accepted postings moved anything, every card of them
            for posting in postings:
                expected[posting.membership_id] += posting.amount
    assert balances(ids) == expected
    for membership_id in ids:
        assert expected[membership_id] >= 0
        assert ledger.ledger_sum(db.session, membership_id) == expected[membership_id]
    assert ledger.find_balance_mismatches(db.session) == []


def test_postings_to_many_cards_stay_guarded_and_all_or_nothing(app, make_merchant, make_member):
    """Beyond a few cards the guarded UPDATE takes the changes as one parameter: every card
    still moves, or none does when one would go below zero."""
    import pytest

    from webapp.errors import InsufficientPoints
    from webapp.models import Membership
    from webapp.services.ledger import MANY_CARDS, Posting, post

    merchant = make_merchant()
    cards = [make_member(merchant, points=10) for _ in range(MANY_CARDS + 3)]
    post(db.session, [Posting(card.id, merchant.id, "adjust", -3 - (i % 2), "x") for i, card in enumerate(cards)])
    db.session.commit()
    balances = lambda: [db.session.get(Membership, card.id).balance for card in cards]  # noqa: E731
    db.session.expire_all()
    expected = [7 - (i % 2) for i in range(len(cards))]
    assert balances() == expected
    with pytest.raises(InsufficientPoints):
        post(db.session, [Posting(card.id, merchant.id, "adjust", -6 if i else -8, "x") for i, card in enumerate(cards)])
    db.session.rollback()
    db.session.expire_all()
    assert balances() == expected
