"""The purchase path with plugins: works with none and with all of them; an in-transaction hook
that raises rolls the sale back; an after-commit hook that raises is logged and retried."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime, timedelta

import pytest
from flask import current_app
from sqlalchemy import func, select

from tests.contracts.plugin_kit import build_plugin
from tests.kit import disable_plugins, enable_every_plugin, enable_plugins
from webapp import outbox, tasks
from webapp.errors import NeighbourlyError, PurchaseDeclined
from webapp.extensions import db
from webapp.formatting import points
from webapp.models import LedgerEntry, Membership, MerchantWeeklyStats, OutboxMessage, Purchase
from webapp.models.base import utcnow
from webapp.plugins import registry
from webapp.services.ledger import Posting, post
from webapp.services.purchases import PurchaseDraft, receipt_lines, record_purchase, refund_purchase
from webapp.tasks import COMMITTED_RETRIES, COMMITTED_RETRY_DELAY

_keys = itertools.count(1)
STATE = {"recorded": None, "committed_fails": True}
committed_calls: list[tuple[str, int]] = []


def exploding_recorded(merchant, purchase, membership, session):
    # A plugin writes its own rows first (here: a bonus), then fails: both must roll back.
    post(session, [Posting(membership.id, merchant.id, "reward", 77, "Probe bonus", source="exploder",
                           purchase_id=purchase.id)])
    if STATE["recorded"] is not None:
        raise STATE["recorded"]


def flaky_committed(merchant, purchase):
    committed_calls.append(("flaky", purchase.id))
    if STATE["committed_fails"]:
        raise ConnectionError("the mail server is down")


def steady_committed(merchant, purchase):
    committed_calls.append(("steady", purchase.id))


@pytest.fixture
def app_overrides():
    STATE.update(recorded=None, committed_fails=True)
    committed_calls.clear()
    return {
        "EXTRA_PLUGIN_OBJECTS": [
            build_plugin("exploder", hooks={"neighbourly_purchase_recorded": exploding_recorded}),
            build_plugin("flaky", hooks={"neighbourly_purchase_committed": flaky_committed}),
            build_plugin("steady", hooks={"neighbourly_purchase_committed": steady_committed}),
        ]
    }


def ledger_total(membership_id: int) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.membership_id == membership_id)
    )


def snapshot(membership: Membership) -> dict:
    db.session.expire_all()
    return {
        "balance": db.session.get(Membership, membership.id).balance,
        "ledger": ledger_total(membership.id),
        "entries": db.session.scalar(select(func.count()).select_from(LedgerEntry)),
        "purchases": db.session.scalar(select(func.count()).select_from(Purchase)),
        "stats": db.session.execute(
            select(MerchantWeeklyStats.purchases, MerchantWeeklyStats.revenue)
        ).all(),
    }


def draft(membership, amount=100000, points=0, key=None) -> PurchaseDraft:
    return PurchaseDraft(membership.id, amount, points, key or f"flow-{next(_keys)}")


# --------------------------------------------------------------------------- (e) with none, with all


@pytest.mark.parametrize("plugins", ["none", "all"])
def test_purchase_flow_with_no_plugins_and_with_every_plugin(plugins, make_merchant, make_member):
    merchant = make_merchant(cashback_bp=500, max_points_share_pct=50)
    if plugins == "all":
        enabled = enable_every_plugin(merchant)
        assert set(enabled) == set(registry().metas)
        STATE["committed_fails"] = False
    member = make_member(merchant, points=3000)

    outcome = record_purchase(db.session, merchant, member, draft(member, amount=200000, points=2000))
    purchase = outcome.purchase
    assert not outcome.replayed
    db.session.expire_all()
    member = db.session.get(Membership, member.id)
    assert purchase.points_used == 2000 and purchase.amount == 200000
    assert member.balance == ledger_total(member.id)
    assert member.balance >= 0
    if plugins == "none":
        assert purchase.points_earned == (200000 - 2000) * 500 // 10000
        assert member.balance == 3000 - 2000 + purchase.points_earned
        assert committed_calls == []  # after-commit hooks of disabled plugins never run
    else:
        assert ("steady", purchase.id) in committed_calls and ("flaky", purchase.id) in committed_calls
    with current_app.test_request_context():
        labels = [line.label for line in receipt_lines(merchant, purchase)]
    assert "Bill" in labels and "Points earned" in labels

    refund_purchase(db.session, merchant, purchase.id, merchant.owner.id)
    db.session.expire_all()
    member = db.session.get(Membership, member.id)
    assert member.balance == ledger_total(member.id) == 3000


# --------------------------------------------------------------------------- (f) in the transaction


@pytest.mark.parametrize(
    ("raised", "shown"),
    [
        (PurchaseDeclined("This certificate was already used."), "This certificate was already used."),
        (RuntimeError("KeyError in plugin code"), "internal error; nothing was charged"),
    ],
)
def test_an_in_transaction_hook_that_raises_rolls_the_purchase_back(raised, shown, make_merchant, make_member):
    merchant = make_merchant()
    enable_plugins(merchant, "exploder")
    member = make_member(merchant, points=500)
    before = snapshot(member)
    STATE["recorded"] = raised

    with pytest.raises(NeighbourlyError) as caught:
        record_purchase(db.session, merchant, member, draft(member, amount=50000, points=200))
    assert shown in caught.value.message
    assert "KeyError" not in caught.value.message  # internals never reach the cashier
    assert snapshot(member) == before  # no purchase, no ledger rows, same balance, same figures

    # Once the plugin behaves, the same customer can buy (a fresh key for the internal error; the
    # declined key replays its decline, which is the idempotency contract).
    STATE["recorded"] = None
    purchase = record_purchase(db.session, merchant, member, draft(member, amount=50000, points=200)).purchase
    after = snapshot(member)
    assert after["purchases"] == before["purchases"] + 1
    assert after["balance"] == after["ledger"] == 500 - 200 + 77 + purchase.points_earned


def test_the_failing_hook_of_one_merchant_does_not_touch_another(make_merchant, make_member):
    failing, fine = make_merchant(), make_merchant()
    enable_plugins(failing, "exploder")
    STATE["recorded"] = PurchaseDeclined("Refused by the probe.")
    member = make_member(fine, points=100)
    purchase = record_purchase(db.session, fine, member, draft(member)).purchase
    assert purchase.id is not None
    assert ledger_total(member.id) == db.session.get(Membership, member.id).balance == 100 + purchase.points_earned


# --------------------------------------------------------------------------- (g) after the commit


def outbox_rows(plugin: str | None = None) -> list[OutboxMessage]:
    db.session.expire_all()
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    return [row for row in rows if plugin is None or row.payload.get("plugin") == plugin]


def test_an_after_commit_hook_that_raises_is_logged_and_retried(make_merchant, make_member, caplog, monkeypatch):
    # Alembic's env.py runs logging.config.fileConfig, which disables loggers that already exist
    # when a migration test ran earlier in this process; the queue's logger must be heard here.
    monkeypatch.setattr(logging.getLogger("webapp.tasks"), "disabled", False)
    caplog.set_level(logging.INFO)
    merchant = make_merchant()
    enable_plugins(merchant, "flaky", "steady")
    member = make_member(merchant, points=100)

    outcome = record_purchase(db.session, merchant, member, draft(member, amount=40000, points=50))
    purchase_id = outcome.purchase.id

    # The purchase stands, with its ledger.
    db.session.expire_all()
    assert db.session.get(Purchase, purchase_id) is not None
    assert db.session.get(Membership, member.id).balance == ledger_total(member.id)
    # Each plugin ran in isolation: the steady one is done, the flaky one failed and was logged.
    assert sorted(committed_calls) == [("flaky", purchase_id), ("steady", purchase_id)]
    assert f"after-commit hook of flaky failed for purchase {purchase_id}; will retry" in caplog.text

    # The outbox keeps the flaky plugin's work, due again after its backoff; the steady one is done.
    (steady,) = outbox_rows("steady")
    assert steady.done_at is not None
    (flaky,) = outbox_rows("flaky")
    assert flaky.done_at is None and flaky.failed_at is None and flaky.attempts == 1
    assert flaky.due_at > datetime.now(UTC) + timedelta(seconds=COMMITTED_RETRY_DELAY - 5)
    assert "ConnectionError: the mail server is down" in flaky.last_error
    # ... and put exactly one retry on the queue's schedule (immediate mode in tests).
    (retry,) = tasks.queue().scheduled()  # each app has its own queue, empty at the start
    assert retry.args == ([flaky.id],)
    assert not outbox.run_message(db.session, flaky.id)  # not due yet: nothing runs
    assert committed_calls.count(("flaky", purchase_id)) == 1

    # The mail server is back: when the retry falls due it succeeds and nothing is left over.
    STATE["committed_fails"] = False
    due = flaky.due_at + timedelta(seconds=1)
    assert outbox.run_message(db.session, flaky.id, now=due)
    assert committed_calls.count(("flaky", purchase_id)) == 2
    assert committed_calls.count(("steady", purchase_id)) == 1  # the retry reran only the failed plugin
    assert all(row.done_at is not None for row in outbox_rows())
    assert not outbox.run_message(db.session, flaky.id, now=due)  # done: a second delivery does nothing
    assert committed_calls.count(("flaky", purchase_id)) == 2


def test_an_after_commit_hook_failing_every_time_is_kept_as_failed(make_merchant, make_member):
    merchant = make_merchant()
    enable_plugins(merchant, "flaky")
    member = make_member(merchant)
    record_purchase(db.session, merchant, member, draft(member))
    (flaky,) = outbox_rows("flaky")
    for _ in range(COMMITTED_RETRIES - 1):
        due = outbox_rows("flaky")[0].due_at + timedelta(seconds=1)
        assert not outbox.run_message(db.session, flaky.id, now=due)
    (flaky,) = outbox_rows("flaky")
    assert flaky.attempts == COMMITTED_RETRIES and flaky.failed_at is not None and flaky.done_at is None
    assert outbox.backlog(db.session, merchant.id).failed == 1
    assert outbox.retry_failed(db.session, merchant.id) == 1
    STATE["committed_fails"] = False
    assert outbox.relay_due(db.session, now=utcnow() + timedelta(minutes=1), run_here=True) == 1
    assert not outbox.backlog(db.session, merchant.id, now=utcnow() + timedelta(minutes=2))


def test_a_retry_does_nothing_once_the_merchant_switched_the_plugin_off(make_merchant, make_member):
    merchant = make_merchant()
    enable_plugins(merchant, "flaky")
    member = make_member(merchant)
    purchase_id = record_purchase(db.session, merchant, member, draft(member)).purchase.id
    assert committed_calls == [("flaky", purchase_id)]
    disable_plugins(merchant, "flaky")
    (retry,) = outbox_rows("flaky")
    assert outbox.run_message(db.session, retry.id, now=retry.due_at + timedelta(seconds=1))
    assert committed_calls == [("flaky", purchase_id)]  # not called again
    assert outbox_rows("flaky")[0].done_at is not None


# --------------------------------------------------------------------------- (h) what a sale costs


def test_nothing_is_queued_unless_an_enabled_plugin_has_an_after_commit_hook(make_merchant, make_member):
    merchant = make_merchant()
    enable_plugins(merchant, "exploder")  # an in-transaction hook only
    STATE["committed_fails"] = False
    member = make_member(merchant, points=100)

    record_purchase(db.session, merchant, member, draft(member))
    assert outbox_rows() == []  # no outbox write: no enabled plugin would do anything after the commit

    enable_plugins(merchant, "steady")
    purchase_id = record_purchase(db.session, merchant, member, draft(member)).purchase.id
    assert [row.payload for row in outbox_rows()] == [
        {"entity": "purchase", "id": purchase_id, "merchant_id": merchant.id, "plugin": "steady"}
    ]
    assert committed_calls == [("steady", purchase_id)]  # "flaky" is installed but not enabled here


def test_after_the_commit_the_sale_keeps_what_it_knows_and_reads_the_card_again(
    make_merchant, make_member, monkeypatch
):
    from sqlalchemy import event, inspect

    merchant = make_merchant()
    enable_plugins(merchant, "exploder", "steady")  # a plugin posts 77 points to the card in the sale
    STATE["committed_fails"] = False
    member = make_member(merchant, points=500)
    merchant.network  # noqa: B018 - loaded, as the till loads it with the merchant
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        purchase = record_purchase(db.session, merchant, member, draft(member, amount=50000, points=200)).purchase
        committed = len(statements)
        # The purchase (every column written by the sale), the merchant and its network stay loaded.
        assert not inspect(purchase).expired_attributes
        assert purchase.amount == 50000 and merchant.slug and merchant.network.currency
        assert len(statements) == committed
        # The card moved in a Core UPDATE (and by the plugin's posting): it is read again.
        assert "balance" in inspect(member).expired_attributes
        with current_app.test_request_context():
            lines = {line.label: line.value for line in receipt_lines(merchant, purchase)}
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    balance = db.session.scalar(select(Membership.balance).where(Membership.id == member.id))
    assert balance == ledger_total(member.id) == 500 - 200 + 77 + purchase.points_earned
    with current_app.test_request_context():
        assert lines["Card balance"] == points(balance)
