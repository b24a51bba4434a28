"""Queue work of the letters plugin: a scheduled letter (an outbox message), and the periodic sweep."""

from __future__ import annotations

from webapp.plugin_api import job, outbox

SCHEDULED_LETTER = "letters.scheduled"


@outbox.handler(SCHEDULED_LETTER, max_attempts=4, backoff=lambda attempt: 300.0 * attempt)
def send_scheduled_letter(payload: dict) -> None:
    """Send one scheduled letter (the reassurance) when its outbox message falls due.

    A no-op if it was sent or cancelled meanwhile: the letter row is claimed by a guarded UPDATE.
    """
    from plugins.letters import delivery

    delivery.send_scheduled(payload["letter_id"])


@job
def sweep(session) -> int:
    """Periodic: overdue scheduled letters (a lost message) and "we miss you" letters."""
    from plugins.letters import delivery

    return delivery.run_periodic()
