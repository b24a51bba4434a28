"""Entry point of the task worker: ``huey_consumer webapp.worker.huey``.

Building the app here loads every configured plugin, so tasks, outbox handlers and periodic jobs
that plugins register are known to the consumer before it starts taking work. Each consumer
process also runs the outbox relay every few seconds, so follow-up work that waited while the
queue was down is on its way moments after the queue is back (the periodic job catches up too).
"""

from __future__ import annotations

import logging
import threading

from webapp import create_app, tasks

log = logging.getLogger(__name__)

app = create_app()
huey = tasks.queue(app)
_relay_lock = threading.Lock()
_relay_started = False


def _relay_forever(stop: threading.Event) -> None:
    interval = float(app.config["OUTBOX_RELAY_INTERVAL_SECONDS"])
    while not stop.wait(interval):
        try:
            with app.app_context():
                tasks.relay_outbox(purge=False)
        except Exception as error:  # noqa: BLE001 - the queue or database is down: try again later
            log.warning("outbox relay: %s: %s", error.__class__.__name__, error)


@huey.on_startup()
def start_relay() -> None:
    """Start one relay thread per consumer process (startup hooks run once per worker)."""
    global _relay_started
    with _relay_lock:
        if _relay_started or not app.config["OUTBOX_RELAY_INTERVAL_SECONDS"]:
            return
        _relay_started = True
    threading.Thread(target=_relay_forever, args=(threading.Event(),), name="outbox-relay", daemon=True).start()


__all__ = ["app", "huey"]
