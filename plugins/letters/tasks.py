"""Queue work of the letters plugin: a scheduled letter (an outbox message), and the periodic sweep."""

from __future__ import annotations

from flask import has_app_context

from webapp.plugin_api import app_for_task, outbox

SCHEDULED_LETTER = "letters.scheduled"


@outbox.handler(SCHEDULED_LETTER, max_attempts=4, backoff=lambda attempt: 300.0 * attempt)
def send_scheduled_letter(payload: dict) -> None:
    """Send one scheduled letter (the reassurance) when its outbox message falls due.

    A no-op if it was sent or cancelled meanwhile: the letter row is claimed by a guarded UPDATE.
    """
    from plugins.letters import delivery

    delivery.send_scheduled(payload["letter_id"])


def _end_callers_transaction() -> None:
    """In immediate mode (tests) the caller's session may hold SQLite's write lock (every
    transaction there is ``BEGIN IMMEDIATE``); it has nothing pending, so end it first."""
    if has_app_context():
        from webapp.plugin_api import db

        db.session.commit()


def sweep() -> int:
    """Periodic: overdue scheduled letters (a lost message) and "we miss you" letters."""
    from webapp.plugin_api import db

    _end_callers_transaction()
    with app_for_task().app_context():
        from plugins.letters import delivery

        try:
            return delivery.run_periodic()
        finally:
            db.session.remove()
