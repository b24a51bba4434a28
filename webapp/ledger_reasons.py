"""Why points moved, in the reader's language: ledger reason kinds and the sentences they render.

A ledger row stores a reason kind and its parameters (``reason_kind``, ``reason_params``), never
a sentence, so the history reads in whatever language its reader chose and wording can change
without touching stored rows. The core's kinds are declared here and registered through the core's
own ``neighbourly_register_ledger_reasons``; plugins declare theirs through the same hook.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app
from flask_babel import gettext as _

from webapp.contracts import LedgerReason, LedgerReasonKind
from webapp.formatting import rate_number

log = logging.getLogger(__name__)

# The core's reason kinds; the parameters each one takes are in its ``example``.
NOTE = "note"  # words a person wrote (a manual adjustment), or an old row that did not parse
REDEEM = "redeem"  # points paid towards a purchase: {"purchase": id}
CASHBACK = "cashback"  # points earned on a purchase: {"purchase": id, "rate_bp": basis points}
REFUND = "refund"  # a reversal: {"purchase": id, "reversed": {"kind": ..., "params": {...}}}
EXPIRED = "expired"
WELCOME = "welcome"
BIRTHDAY = "birthday"  # {"year": 2026}
IMPORTED = "imported"  # the opening balance carried over from a previous programme


def note(text: str) -> LedgerReason:
    """A reason in someone's own words, shown as written (never translated)."""
    return LedgerReason(NOTE, {"text": " ".join(str(text).split())[:255]})


def redeemed(purchase_id: int) -> LedgerReason:
    return LedgerReason(REDEEM, {"purchase": purchase_id})


def cashback(purchase_id: int, rate_bp: int) -> LedgerReason:
    return LedgerReason(CASHBACK, {"purchase": purchase_id, "rate_bp": rate_bp})


def refund(
    purchase_id: int, reversed_kind: str, reversed_params: Mapping[str, Any]
) -> LedgerReason:
    return LedgerReason(
        REFUND,
        {
            "purchase": purchase_id,
            "reversed": {"kind": reversed_kind, "params": dict(reversed_params)},
        },
    )


def birthday(year: int) -> LedgerReason:
    return LedgerReason(BIRTHDAY, {"year": year})


def _render_refund(params: Mapping[str, Any]) -> str:
    inner = params.get("reversed") or {}
    return _(
        "Refund of purchase #%(number)s: %(reason)s",
        number=params.get("purchase"),
        reason=render(inner.get("kind", NOTE), inner.get("params") or {}),
    )


CORE_KINDS: tuple[LedgerReasonKind, ...] = (
    LedgerReasonKind(NOTE, lambda p: str(p.get("text", "")), {"text": "Broken cup, sorry"}),
    LedgerReasonKind(
        REDEEM,
        lambda p: _("Paid with points, purchase #%(number)s", number=p["purchase"]),
        {"purchase": 12},
    ),
    LedgerReasonKind(
        CASHBACK,
        lambda p: _(
            "Cashback %(rate)s%% on purchase #%(number)s",
            rate=rate_number(p["rate_bp"]),
            number=p["purchase"],
        ),
        {"purchase": 12, "rate_bp": 250},
    ),
    LedgerReasonKind(
        REFUND,
        _render_refund,
        {
            "purchase": 12,
            "reversed": {"kind": CASHBACK, "params": {"purchase": 12, "rate_bp": 500}},
        },
    ),
    LedgerReasonKind(EXPIRED, lambda p: _("Points expired")),
    LedgerReasonKind(WELCOME, lambda p: _("Welcome bonus")),
    LedgerReasonKind(
        BIRTHDAY, lambda p: _("Birthday bonus %(year)s", year=p["year"]), {"year": 2026}
    ),
    LedgerReasonKind(IMPORTED, lambda p: _("Imported from the previous program")),
)

_APP_KEY = "neighbourly_ledger_reasons"
_CACHE_LIMIT = 4096


class UnknownReasonKind(LookupError):
    """A ledger row names a reason kind that no installed plugin declares."""


class _Book:
    """The app's reason kinds and the sentences already rendered (the same rows come back on
    every visit to a wallet)."""

    def __init__(self, kinds: dict[str, LedgerReasonKind], strict: bool) -> None:
        self.kinds = kinds
        self.strict = strict
        self.sentences: dict[tuple[str, str, str], str] = {}


def _book() -> _Book:
    app = current_app._get_current_object()
    book = app.extensions.get(_APP_KEY)
    if book is None:
        kinds: dict[str, LedgerReasonKind] = {}
        pm = app.extensions["neighbourly"].pm
        for declared in pm.hook.neighbourly_register_ledger_reasons():
            for kind in declared or ():
                if kind.kind in kinds:
                    raise RuntimeError(f"two renderers for the ledger reason kind {kind.kind!r}")
                kinds[kind.kind] = kind
        book = app.extensions[_APP_KEY] = _Book(kinds, strict=app.testing)
    return book


def reason_kinds() -> dict[str, LedgerReasonKind]:
    """Every reason kind the app can render (the core's and the installed plugins'), by name."""
    return dict(_book().kinds)


def render(kind: str | None, params: Mapping[str, Any] | None) -> str:
    """The sentence for a stored reason in the current locale.

    A kind nobody declares (a plugin since removed) shows its ``text`` parameter, or the kind
    itself; in tests it raises ``UnknownReasonKind``, so a missing renderer cannot hide.
    """
    kind = kind or NOTE
    params = params or {}
    declared = _book().kinds.get(kind)
    if declared is None:
        if _book().strict:
            raise UnknownReasonKind(f"no renderer for the ledger reason kind {kind!r}")
        log.warning("no renderer for the ledger reason kind %r", kind)
        return str(params.get("text") or kind)
    try:
        return declared.render(params)
    except (KeyError, TypeError, ValueError):
        if _book().strict:
            raise
        log.warning("ledger reason %r could not render %r", kind, params)
        return str(params.get("text") or kind)


def render_cached(kind: str | None, params: Mapping[str, Any] | None, locale: str) -> str:
    """``render``, remembered per app and ``locale`` (the current one, which the caller names)."""
    book = _book()
    key = (kind or NOTE, json.dumps(params or {}, sort_keys=True, default=str), locale)
    sentence = book.sentences.get(key)
    if sentence is None:
        if len(book.sentences) >= _CACHE_LIMIT:
            book.sentences.clear()
        sentence = book.sentences[key] = render(kind, params)
    return sentence


def render_entry(entry: Any) -> str:
    """The sentence of anything with ``reason_kind`` and ``reason_params`` (a row, an entry)."""
    return render(entry.reason_kind, entry.reason_params)
