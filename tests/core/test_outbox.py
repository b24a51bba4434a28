"""The transactional outbox: rows commit with their event or not at all, run once under races and
lapsed leases, show as a backlog when late; a hanging plugin or a locked database answers 503."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import func, select, text

from tests.concurrency import race
from tests.contracts.plugin_kit import build_plugin
from tests.kit import enable_plugins
from webapp import outbox
from webapp.extensions import commit_without_expiring, db
from webapp.models import LedgerEntry, Membership, OutboxMessage, Purchase
from webapp.models.base import utcnow
from webapp.services.ledger import Posting, post
from webapp.services.purchases import PurchaseDraft, record_purchase

_keys = itertools.count(1)
STATE: dict = {"fail_recorded": False, "sleep": False}


def recorded(merchant, purchase, membership, session):
    # A plugin that hangs inside the sale's transaction.
    if STATE["sleep"] and session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_sleep(5)"))
    if STATE["fail_recorded"]:
        raise RuntimeError("the plugin broke")


def committed(merchant, purchase):
    from webapp.mail import send_email

    send_email("owner@example.com", f"Sale {purchase.id}", "A sale")


@pytest.fixture
def app_overrides():
    STATE.update(fail_recorded=False, sleep=False, took_over=False)
    return {
        "DATABASE_STATEMENT_TIMEOUT_MS": 300,
        "DATABASE_BUSY_TIMEOUT_S": 0.5,
        "EXTRA_PLUGIN_OBJECTS": [
            build_plugin("probe", hooks={
                "neighbourly_purchase_recorded": recorded, "neighbourly_purchase_committed": committed,
            }),
        ],
    }


@pytest.fixture
def mailbox(app):
    """E-mails delivered (the test config's in-memory backend), from the start of the test."""
    mail = app.extensions["mailman"]
    mail.outbox = []  # the locmem backend appends here
    return mail.outbox


@pytest.fixture
def shop(make_merchant, make_user):
    cashier = make_user(name="Cashier")
    merchant = make_merchant(cashiers=[cashier])
    merchant.cashier = cashier
    enable_plugins(merchant, "probe")
    return merchant


def draft(member, key: str | None = None) -> PurchaseDraft:
    return PurchaseDraft(membership_id=member.id, amount=20000, points_to_use=0,
                         idempotency_key=key or f"key-{next(_keys)}")


def rows(kind: str | None = None) -> list[OutboxMessage]:
    db.session.expire_all()
    found = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    commit_without_expiring(db.session())  # end the read: on SQLite every transaction holds the write lock
    return [row for row in found if kind is None or row.kind == kind]


def test_a_sale_commits_its_follow_up_work_and_the_e_mail_it_queues(shop, make_member, mailbox):
    member = make_member(shop)
    purchase = record_purchase(db.session, shop, member, draft(member)).purchase
    (hook,) = rows("committed")
    (mail,) = rows("email")
    assert hook.payload == {"entity": "purchase", "id": purchase.id, "merchant_id": shop.id, "plugin": "probe"}
    assert hook.done_at is not None and mail.done_at is not None and mail.merchant_id is None
    assert [message.subject for message in mailbox] == [f"Sale {purchase.id}"]


def test_a_sale_rolled_back_leaves_no_follow_up_work(shop, make_member, mailbox):
    member = make_member(shop)
    STATE["fail_recorded"] = True
    with pytest.raises(Exception, match="internal error"):
        record_purchase(db.session, shop, member, draft(member))
    assert rows() == [] and mailbox == []
    assert outbox.uncommitted(db.session) == 0


PROBE_KIND = "test.probe_points"


@outbox.handler(PROBE_KIND, max_attempts=2)
def _probe_points(payload: dict) -> None:
    """A handler with a database effect: one point per run."""
    if payload.get("nested_takeover") and not STATE.get("took_over"):
        STATE["took_over"] = True
        # While this (slow) worker runs, its lease lapses and another worker takes the message.
        with current_app._get_current_object().app_context():
            lapsed = utcnow() + timedelta(hours=2, minutes=6)
            assert outbox.run_message(db.session, payload["message_id"], now=lapsed)
            db.session.remove()
    post(db.session, [Posting(payload["membership_id"], payload["merchant_id"], "adjust", 1, "Probe")])


def _probe_message(shop, member, **extra) -> int:
    outbox.add(db.session, PROBE_KIND, {"membership_id": member.id, "merchant_id": shop.id, **extra},
               merchant_id=shop.id, delay=3600)  # not run at once: the test runs it
    db.session.commit()
    return rows(PROBE_KIND)[-1].id


def balance(member) -> int:
    db.session.expire_all()
    found = db.session.get(Membership, member.id).balance
    db.session.commit()
    return found


def test_workers_racing_for_one_message_run_it_once(app, shop, make_member, patient_sqlite):
    member = make_member(shop)
    later = utcnow() + timedelta(hours=2)
    for round_number in range(1, 6):
        message_id = _probe_message(shop, member)
        outcomes = race(app, 8, lambda thread, number, message_id=message_id: outbox.run_message(
            db.session, message_id, now=later))
        assert sorted(outcomes, key=repr) == [False] * 7 + [True], outcomes
        assert balance(member) == round_number  # the handler's effect happened once per message


def test_a_lapsed_lease_is_taken_over_and_the_slow_worker_rolls_back(shop, make_member):
    member = make_member(shop)
    message_id = _probe_message(shop, member)
    message = db.session.get(OutboxMessage, message_id)
    message.payload = {**message.payload, "nested_takeover": True, "message_id": message_id}
    db.session.commit()
    # The slow worker's completion is refused: the one that took the lease over did the work.
    assert outbox.run_message(db.session, message_id, now=utcnow() + timedelta(hours=2)) is False
    assert balance(member) == 1
    assert rows(PROBE_KIND)[0].done_at is not None


def test_late_work_shows_on_the_dashboard_and_the_operator_page(client, shop, make_member):
    member = make_member(shop)
    client.login(shop.owner)
    assert "outbox-backlog" not in client.get(f"/business/{shop.slug}/dashboard").get_data(as_text=True)
    message_id = _probe_message(shop, member)
    message = db.session.get(OutboxMessage, message_id)
    message.due_at = utcnow() - timedelta(minutes=3)  # the queue was down: it is late now
    db.session.commit()
    page = client.get(f"/business/{shop.slug}/dashboard").get_data(as_text=True)
    assert "1 follow-up task (e-mails, letters, rewards after a sale) is waiting to be done" in page
    assert "Nothing is lost" in page
    client.post_form("/auth/logout")
    client.login(shop.network.operator)
    assert "is waiting to be done" in client.get(f"/operator/{shop.network.slug}/").get_data(as_text=True)
    # Given up after its attempts, it says so instead.
    message = db.session.get(OutboxMessage, message_id)
    message.failed_at = utcnow()
    db.session.commit()
    page = client.get(f"/operator/{shop.network.slug}/").get_data(as_text=True)
    assert "failed after every retry" in page and "is waiting to be done" not in page


def test_a_plugin_that_hangs_in_the_sale_gets_a_503_and_nothing_is_recorded(
    backend, client, shop, make_member, mailbox
):
    member = make_member(shop)
    client.login(shop.cashier)
    form = {"membership_id": member.id, "amount": "200", "points": "0", "idempotency_key": "hang-1"}
    if backend == "postgres":
        STATE["sleep"] = True  # pg_sleep outlives the statement timeout
        response = client.post_form(f"/business/{shop.slug}/till/purchase", form, htmx=True)
    else:
        # SQLite has no statement timeout: a writer holding the lock past the busy timeout does it.
        token, url = client.csrf_token(), f"/business/{shop.slug}/till/purchase"
        db.session.commit()
        blocker = db.engine.raw_connection()
        blocker.execute("BEGIN IMMEDIATE")
        try:
            response = client.post(url, data=form,
                                   headers={"HX-Request": "true", "X-CSRFToken": token})
        finally:
            blocker.rollback()
            blocker.close()
    assert response.status_code == 503
    assert ("The sale was not recorded: the database is not available. Try again; it will not be "
            "recorded twice.") in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Purchase.id))) == 0
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 0
    assert rows() == [] and mailbox == []
    # Fixed: Confirm again with the same key records the sale once.
    STATE["sleep"] = False
    response = client.post_form(f"/business/{shop.slug}/till/purchase", form, htmx=True)
    assert response.status_code == 200 and "Points earned" in response.get_data(as_text=True)
    response = client.post_form(f"/business/{shop.slug}/till/purchase", form, htmx=True)
    assert response.status_code == 200
    assert db.session.scalar(select(func.count(Purchase.id))) == 1
