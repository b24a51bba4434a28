"""CSV files the site hands out: formula cells neutralised, rows streamed as they are read.

Every CSV download goes through ``csv_response`` (or ``csv_text``), so no export can carry a cell
such as ``=HYPERLINK(...)`` that a spreadsheet would run when the file is opened.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from flask import Response, stream_with_context

# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")
ROWS_PER_CHUNK = 500
# A number written the reader's way ("-1 234,50"): a spreadsheet reads it as the number it is.
_LOCAL_NUMBER = re.compile(r"-?\d[\d\u00a0\u202f .,]*")


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet evaluates: text starting like a formula gets a
    leading apostrophe (shown as text, the characters kept). Numbers stay numbers (``-5``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES) and not _LOCAL_NUMBER.fullmatch(text):
        return "'" + text
    return text


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in row]


class _Line:
    """A file-like target for ``csv.writer`` that keeps only what was written last."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text


def iter_csv(rows: Iterable[Iterable[Any]], *, bom: bool = True, delimiter: str = ",") -> Iterator[str]:
    """The CSV text of ``rows`` in chunks of a few hundred lines; nothing is held but one chunk.

    A UTF-8 byte order mark comes first, so spreadsheet programs read Cyrillic names right.
    """
    target = _Line()
    writer = csv.writer(target, delimiter=delimiter)
    if bom:
        yield "\ufeff"
    pending = 0
    for row in rows:
        writer.writerow(safe_row(row))
        pending += 1
        if pending >= ROWS_PER_CHUNK:
            yield target.take()
            pending = 0
    rest = target.take()
    if rest:
        yield rest


def csv_text(rows: Iterable[Iterable[Any]], *, bom: bool = False) -> str:
    """The whole CSV as one string (small files, tests)."""
    buffer = io.StringIO()
    for chunk in iter_csv(rows, bom=bom):
        buffer.write(chunk)
    return buffer.getvalue()


def csv_response(
    rows: Iterable[Iterable[Any]], filename: str, *, stream: bool = True, delimiter: str = ",", bom: bool = True,
) -> Response:
    """A CSV download of ``rows`` (an iterator is streamed: read, written and sent row by row).

    The request context stays open while the body streams, so a generator may keep using
    ``db.session``; it is closed when the last chunk has gone.
    """
    body = iter_csv(rows, delimiter=delimiter, bom=bom)
    safe_name = "".join(ch for ch in filename if ch.isalnum() or ch in "-_.") or "export.csv"
    response = Response(
        stream_with_context(body) if stream else "".join(body), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{safe_name}"'},
    )
    response.headers["Cache-Control"] = "no-store"
    return response
