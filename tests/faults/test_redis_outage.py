"""Redis down: signing in and every sale work (rate limits count in memory meanwhile); the sales'
follow-up work waits in the outbox and is delivered exactly once when Redis is back and the
worker runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from tests.conftest import make_app
from tests.faults.conftest import Cashier, ledger_holds, seed_till, site_env
from tests.servers import PROJECT_ROOT, gunicorn, stop_process
from webapp.extensions import db
from webapp.models import OutboxMessage

pytestmark = [pytest.mark.slow, pytest.mark.redis]

SALES = 50
DELIVERY_TIMEOUT = 90  # seconds for the worker to deliver the backlog; polled


def thank_you_letters(smtp) -> list[str]:
    return [m["Subject"] for m in smtp.messages if m["Subject"].startswith("Thank you for your visit")]


def pending_now_due(database_url: str) -> int:
    app = make_app(database_url)
    with app.app_context():
        try:
            return db.session.scalar(
                select(func.count(OutboxMessage.id)).where(
                    OutboxMessage.done_at.is_(None), OutboxMessage.kind != "letters.scheduled"
                )
            )
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.mark.parametrize("fresh_database", ["sqlite", "postgres"], indirect=True)
def test_sales_survive_redis_outages_and_their_letters_arrive_once(fresh_database, own_redis, smtp, tmp_path):
    till = seed_till(fresh_database)
    env = site_env(till, smtp, tmp_path, NEIGHBOURLY_REDIS_URL=own_redis.url)
    with gunicorn(env, tmp_path, workers=2) as port:
        own_redis.kill()  # down before the shift starts: the cashier still signs in
        cashier = Cashier(port, till)
        cashier.sign_in()
        answers = []
        for number in range(SALES):
            if number == 20:
                own_redis.start()  # back for a while; no worker runs yet, so tasks pile up in it
            if number == 35:
                own_redis.kill()  # and gone again mid-shift, with what it held
            answers.append(cashier.sell(f"sale-{number}"))
            assert cashier.still_signed_in(), f"signed out after sale {number}"
        assert [status for status, _page in answers] == [200] * SALES
        assert all("Points earned" in page for _status, page in answers)
        count, balanced, complete = ledger_holds(fresh_database)
        assert (count, balanced, complete) == (SALES, True, True)
        # Nothing was sent while the queue was unreachable or had no worker: the work waits.
        assert thank_you_letters(smtp) == []
        assert pending_now_due(fresh_database) >= SALES

        own_redis.start()  # empty: the tasks it held before the second outage are gone
        worker_env = {**os.environ, **env, "NEIGHBOURLY_OUTBOX_RELAY_GRACE_SECONDS": "0",
                      "NEIGHBOURLY_OUTBOX_RELAY_INTERVAL_SECONDS": "1"}
        log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [sys.executable, "-m", "huey.bin.huey_consumer", "webapp.worker.huey", "--workers", "2"],
            cwd=PROJECT_ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + DELIVERY_TIMEOUT
            while time.monotonic() < deadline and (
                len(thank_you_letters(smtp)) < SALES or pending_now_due(fresh_database)
            ):
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                time.sleep(0.5)  # bounded polling while the worker delivers
            time.sleep(3)  # a few more relay rounds: nothing may be delivered twice
        finally:
            stop_process(worker)
            log.close()
    letters = thank_you_letters(smtp)
    assert len(letters) == SALES, (tmp_path / "worker.log").read_text()[-3000:]
    assert {m["To"] for m in smtp.messages} == {till.customer_email}
    assert pending_now_due(fresh_database) == 0
    assert ledger_holds(fresh_database) == (SALES, True, True)
