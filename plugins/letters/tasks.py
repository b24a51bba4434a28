"""Queue tasks of the letters plugin: a scheduled letter, and the periodic sweep."""

from __future__ import annotations

from flask import has_app_context

from webapp.tasks import app_for_task, huey


def _end_callers_transaction() -> None:
    """In immediate mode (tests, ``call_local``) the caller's session may hold SQLite's write lock
    (every transaction there is ``BEGIN IMMEDIATE``); it has nothing pending, so end it first."""
    if has_app_context():
        from webapp.extensions import db

        db.session.commit()


@huey.task(retries=3, retry_delay=300)
def send_scheduled_letter(letter_id: int) -> bool:
    """Send one scheduled letter (the reassurance); a no-op if it was sent or cancelled meanwhile."""
    from webapp.extensions import db

    _end_callers_transaction()
    with app_for_task().app_context():
        from plugins.letters import delivery

        try:
            return delivery.send_scheduled(letter_id)
        finally:
            db.session.remove()


def sweep() -> int:
    """Periodic: overdue scheduled letters (a lost queue entry) and "we miss you" letters."""
    from webapp.extensions import db

    _end_callers_transaction()
    with app_for_task().app_context():
        from plugins.letters import delivery

        try:
            return delivery.run_periodic()
        finally:
            db.session.remove()
