"""Letters as PDF through the core's sandboxed renderer: the letter stylesheet it may load, the
time limit of a batch, and messages that speak of letters."""

from __future__ import annotations

from pathlib import Path

from webapp.plugin_api import PdfRefused, data_url
from webapp.plugin_api import render_pdf as render_document

__all__ = ["STATIC_FILES", "PdfRefused", "data_url", "render_pdf", "time_limit"]

HERE = Path(__file__).resolve().parent
# The only local files a letter may load, by the exact URL written in the letter's HTML.
STATIC_FILES = {"letters-static:letter.css": str(HERE / "static" / "letter.css")}
SINGLE_LETTER_SECONDS = 10.0
SECONDS_PER_EXTRA_LETTER = 1.0


def time_limit(letters: int) -> float:
    """One letter gets 10 s; a batch gets one more second for each further letter."""
    return SINGLE_LETTER_SECONDS + SECONDS_PER_EXTRA_LETTER * max(0, letters - 1)


def render_pdf(html: str, timeout: float = SINGLE_LETTER_SECONDS) -> bytes:
    """Render letters' ``html`` to PDF bytes, or raise :class:`PdfRefused` (timeout or failure)."""
    try:
        return render_document(html, allowed=STATIC_FILES, timeout=timeout)
    except PdfRefused as refused:
        message = _timeout_message() if refused.timed_out else _failure_message()
        raise PdfRefused(message, timed_out=refused.timed_out) from None


def _timeout_message() -> str:
    from flask_babel import gettext as _

    return _("The letter took too long to lay out and was refused. Shorten or simplify the text.")


def _failure_message() -> str:
    from flask_babel import gettext as _

    return _("The letter could not be turned into a PDF.")
