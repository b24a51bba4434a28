"""PostgreSQL stopped at once (``-m immediate``) during a burst of sales and started again: the till
answers 503 with a clear message while it is down, the first request after it is back works
without restarting the site, and no sale is half-written or recorded twice."""

from __future__ import annotations

import threading
import time

import pytest

from tests.faults.conftest import Cashier, ledger_holds, seed_till, site_env
from tests.servers import gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

UNAVAILABLE = (
    "The sale was not recorded: the database is not available. Try again; it will not be recorded twice."
)
BURST = 40
OUTAGE_SECONDS = 2


def test_a_database_restart_during_a_burst_loses_nothing_and_records_nothing_twice(own_postgres, smtp, tmp_path):
    till = seed_till(own_postgres.database("site"))
    env = site_env(till, smtp, tmp_path)
    with gunicorn(env, tmp_path, workers=2) as port:
        cashier = Cashier(port, till)
        cashier.sign_in()
        acknowledged: list[str] = []
        unavailable: list[str] = []
        others: list[tuple[int, str]] = []
        started = threading.Event()

        def burst() -> None:
            # A cashier who sees an error presses Confirm again with the same form (same key).
            for number in range(BURST):
                key = f"burst-{number}"
                for _attempt in range(200):
                    if number == 5:
                        started.set()
                    try:
                        status, page = cashier.sell(key)
                    except OSError as error:  # the connection dropped mid-request
                        others.append((0, str(error)))
                        time.sleep(0.05)
                        continue
                    if status == 200:
                        acknowledged.append(key)
                        break
                    if status == 503:
                        unavailable.append(page)
                        time.sleep(0.05)  # bounded: the cashier tries again a moment later
                        continue
                    others.append((status, page[:300]))
                    break

        thread = threading.Thread(target=burst)
        thread.start()
        assert started.wait(60)
        own_postgres.stop("immediate")
        time.sleep(OUTAGE_SECONDS)  # the outage lasts a little while
        down_status, down_page = cashier.sell("while-down")
        own_postgres.start()
        # The first request after the restart works: connections are checked before use.
        first_status, first_page = cashier.sell("while-down")
        thread.join(timeout=300)
        assert not thread.is_alive()

    assert down_status == 503 and UNAVAILABLE in down_page
    assert first_status == 200 and "Points earned" in first_page
    assert unavailable and all(UNAVAILABLE in page for page in unavailable)
    assert [status for status, _ in others if status] == []  # never a 500 or another error page
    assert sorted(acknowledged) == sorted(f"burst-{n}" for n in range(BURST))
    # Every acknowledged sale is stored once, with its ledger; the retried key recorded once.
    assert ledger_holds(till.database_url) == (BURST + 1, True, True)
