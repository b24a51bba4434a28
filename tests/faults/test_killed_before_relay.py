"""A process killed between the sale's commit and handing its follow-up work to the queue: the
outbox row is delivered later by the relay, exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import make_app
from tests.faults.conftest import seed_till, site_env
from tests.servers import PROJECT_ROOT
from webapp import outbox
from webapp.extensions import db
from webapp.models import OutboxMessage, Purchase
from webapp.models.base import utcnow

pytestmark = [pytest.mark.slow]

SELL_AND_DIE = textwrap.dedent("""
    import os, signal
    from webapp import create_app, outbox
    from webapp.extensions import db
    from webapp.models import Membership, Merchant
    from webapp.services.purchases import PurchaseDraft, record_purchase

    # The process dies right after the commit, before the queue hears of the sale.
    outbox.hand_over = lambda pending: os.kill(os.getpid(), signal.SIGKILL)
    app = create_app()
    with app.app_context():
        membership = db.session.get(Membership, int(os.environ["MEMBERSHIP_ID"]))
        merchant = db.session.get(Merchant, membership.merchant_id)
        record_purchase(db.session, merchant, membership, PurchaseDraft(
            membership_id=membership.id, amount=100000, points_to_use=0, idempotency_key="last-sale"))
    print("not killed")
""")


@pytest.mark.parametrize("fresh_database", ["sqlite", "postgres"], indirect=True)
def test_work_of_a_sale_whose_process_died_after_the_commit_is_delivered_later(fresh_database, smtp, tmp_path):
    till = seed_till(fresh_database)
    env = {**site_env(till, smtp, tmp_path), "MEMBERSHIP_ID": str(till.membership_id)}
    died = subprocess.run(
        [sys.executable, "-c", SELL_AND_DIE], cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=120,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-2000:]

    app = make_app(fresh_database, MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port)
    with app.app_context():
        purchase = db.session.scalar(select(Purchase).where(Purchase.idempotency_key == "last-sale"))
        assert purchase is not None  # the sale was committed ...
        waiting = db.session.scalars(select(OutboxMessage).where(OutboxMessage.done_at.is_(None))).all()
        assert {row.payload.get("plugin") for row in waiting if row.kind == "committed"} == {"letters"}
        assert smtp.messages == []  # ... and nothing of its follow-up work had happened
        later = utcnow() + timedelta(minutes=1)
        assert outbox.backlog(db.session, merchant_id=purchase.merchant_id, now=later).waiting >= 1

        # The relay (the worker's periodic job) hands it over; it runs once, however often it runs.
        assert outbox.relay_due(db.session, now=later, run_here=True) >= 1
        assert outbox.relay_due(db.session, now=later, run_here=True) == 0
        assert [m["Subject"] for m in smtp.messages] == ["Thank you for your visit, Aigerim!"]
        assert not outbox.backlog(db.session, merchant_id=purchase.merchant_id, now=later)
        db.session.remove()
        db.engine.dispose()
