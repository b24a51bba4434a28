"""CSV files the site hands out: formula cells neutralised, rows streamed as they are read.

Every CSV download goes through ``csv_response`` (or ``csv_text``), so no export can carry a cell
such as ``=HYPERLINK(...)`` that a spreadsheet would run when the file is opened.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CsvVariant:
    """Who a CSV is for. People (the default) get headers in their language, amounts in currency
    units written as their locale writes them, and ``;`` between columns where the decimal mark is
    a comma (what a spreadsheet there expects). Programs (``?format=machine``) get a stable file:
    English snake_case headers, amounts in minor units, commas, no byte order mark."""

    machine: bool
    locale: str
    delimiter: str = ","

    @property
    def bom(self) -> bool:
        return not self.machine

    @property
    def suffix(self) -> str:
        """Added to the file name so the two downloads do not overwrite each other."""
        return "-machine" if self.machine else ""

    def header(self, machine_names: Sequence[str], people_names: Sequence[str]) -> list[str]:
        return list(machine_names if self.machine else people_names)

    def amount(self, minor: int | None, currency: str) -> object:
        """Minor units for programs; currency units in the reader's notation for people."""
        from babel.numbers import format_decimal

        from webapp.formatting import minor_to_decimal

        if minor is None:
            return ""
        if self.machine:
            return minor
        return format_decimal(minor_to_decimal(minor, currency), group_separator=False, locale=self.locale)

    def response(self, rows: Iterable[Iterable[Any]], filename: str, *, stream: bool = True) -> Response:
        stem, _dot, extension = filename.rpartition(".")
        return csv_response(
            rows, f"{stem}{self.suffix}.{extension}", stream=stream, delimiter=self.delimiter, bom=self.bom
        )


def csv_variant(requested: str | None, locale: str) -> CsvVariant:
    """The variant a download asked for (``format=machine`` or nothing) in the reader's ``locale``."""
    from babel.numbers import get_decimal_symbol

    if requested == "machine":
        return CsvVariant(machine=True, locale=locale)
    return CsvVariant(machine=False, locale=locale, delimiter=";" if get_decimal_symbol(locale) == "," else ",")
