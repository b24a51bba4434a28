"""The one PDF renderer: WeasyPrint in a separate, time-limited process with a deny-by-default URL fetcher.

WeasyPrint runs in a child process (``pdf_worker.py``) so that a hostile or pathological document
can be killed at the time limit without taking the web or task worker with it, and so that the
only resources it can load are ``data:`` URLs and the local files the caller lists by exact URL.
Callers pass plain HTML (rendered from plain data, never ORM objects) and render outside any
purchase transaction.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from webapp.errors import NeighbourlyError

WORKER = Path(__file__).resolve().parent / "pdf_worker.py"
DEFAULT_SECONDS = 10.0


class PdfRefused(NeighbourlyError):
    """This document cannot be turned into a PDF (too slow to lay out, or it failed)."""

    status_code = 422

    def __init__(self, message: str = "", *, timed_out: bool = False, **details: object) -> None:
        super().__init__(message, **details)
        self.timed_out = timed_out


def render_pdf(
    html: str, *, allowed: Mapping[str, str] | None = None, timeout: float = DEFAULT_SECONDS
) -> bytes:
    """Render ``html`` to PDF bytes, or raise :class:`PdfRefused` (timeout or failure).

    ``allowed`` maps the exact URLs the document may load (a stylesheet, a font) to local files;
    everything else but ``data:`` URLs is refused, local files and the network alike.
    """
    request = json.dumps({"html": html, "allowed": dict(allowed or {})})
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
        raise PdfRefused(_timeout_message(), timed_out=True) from None
    if completed.returncode != 0 or not completed.stdout.startswith(b"%PDF"):
        raise PdfRefused(_failure_message())
    return completed.stdout


def data_url(data: bytes, mime: str) -> str:
    """``data:`` URL of an image or file, the way a PDF embeds what it may not fetch."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _timeout_message() -> str:
    from flask_babel import gettext as _

    return _("The document took too long to lay out and was refused.")


def _failure_message() -> str:
    from flask_babel import gettext as _

    return _("The document could not be turned into a PDF.")
