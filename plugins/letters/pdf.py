"""PDF rendering in a separate, time-limited process with a deny-by-default URL fetcher.

WeasyPrint runs in a child process (``pdf_worker.py``) so that a hostile or pathological document
can be killed at the time limit without taking the web or task worker with it, and so that the
only resources it can load are ``data:`` URLs and the files listed in :data:`STATIC_FILES`.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from webapp.errors import NeighbourlyError

HERE = Path(__file__).resolve().parent
WORKER = HERE / "pdf_worker.py"
# The only local files a letter may load, by the exact URL written in the letter's HTML.
STATIC_FILES = {"letters-static:letter.css": str(HERE / "static" / "letter.css")}
SINGLE_LETTER_SECONDS = 10.0
SECONDS_PER_EXTRA_LETTER = 1.0


class PdfRefused(NeighbourlyError):
    """This letter cannot be turned into a PDF."""

    status_code = 422


def time_limit(letters: int) -> float:
    """One letter gets 10 s; a batch gets one more second for each further letter."""
    return SINGLE_LETTER_SECONDS + SECONDS_PER_EXTRA_LETTER * max(0, letters - 1)


def render_pdf(html: str, timeout: float = SINGLE_LETTER_SECONDS) -> bytes:
    """Render ``html`` to PDF bytes, or raise :class:`PdfRefused` (timeout or failure)."""
    request = json.dumps({"html": html, "allowed": STATIC_FILES})
    cpu_seconds = max(1, int(timeout) + 1)
    try:
        completed = subprocess.run(  # noqa: S603  (our own script, data goes in on stdin)
            # -I: no user site, no PYTHON* variables, no current directory on the path.
            [sys.executable, "-I", str(WORKER), str(cpu_seconds)],
            input=request.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        # subprocess.run kills the child before raising: nothing keeps running.
        raise PdfRefused(_timeout_message()) from None
    if completed.returncode != 0 or not completed.stdout.startswith(b"%PDF"):
        raise PdfRefused(_failure_message())
    return completed.stdout


def _timeout_message() -> str:
    from flask_babel import gettext as _

    return _("The letter took too long to lay out and was refused. Shorten or simplify the text.")


def _failure_message() -> str:
    from flask_babel import gettext as _

    return _("The letter could not be turned into a PDF.")


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
