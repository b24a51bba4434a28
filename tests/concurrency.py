"""Races for the concurrency tests: threads released together by a barrier, outcomes collected."""

from __future__ import annotations

import threading
from collections.abc import Callable

from webapp.extensions import db


def race(app, threads: int, work: Callable[[int, int], object], rounds: int = 1) -> list:
    """Run ``work(thread, round)`` ``rounds`` times in each of ``threads`` threads, all released at
    once, each thread in its own app context (its own session). Returns every outcome: the value
    returned, or the exception raised (after rolling that thread's session back)."""
    barrier = threading.Barrier(threads)
    outcomes: list = []
    lock = threading.Lock()

    def runner(thread: int) -> None:
        with app.app_context():
            barrier.wait()
            for number in range(rounds):
                try:
                    outcome = work(thread, number)
                except Exception as error:  # collected; the tests assert on the outcomes
                    db.session.rollback()
                    outcome = error
                with lock:
                    outcomes.append(outcome)
            db.session.remove()

    pool = [threading.Thread(target=runner, args=(number,)) for number in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return outcomes
