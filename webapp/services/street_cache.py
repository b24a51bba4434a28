"""Rendered street searches kept in this process for the rest of their minute (bounded LRU).

A search's answer depends on the network (its currency, point value, slug, zone, language), the
query, the category, "open now", the page, the reader's locale, the minute (open states) and the
street's catalogue: the price items, merchants and weekly hours. All but the catalogue are in the
key; the catalogue is ``generation()``, a number this process bumps after every commit that wrote
any price item, merchant, hours row or network (through the ORM: objects flushed, or ORM-enabled
``insert``/``update``/``delete`` statements). A search reads the generation before it runs, so an
answer read before a commit is stored under the old generation and never served after it.

Per process: another process (a second web worker) serves an entry it cached until the minute
in its key is over, so an edit there shows here within a minute at most. ``STREET_CACHE_SIZE``
bounds the entries (0 switches the cache off).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from itertools import chain

from sqlalchemy import event
from sqlalchemy.orm import Session

from webapp.models import Merchant, MerchantHours, Network, PriceItem
from webapp.unit_of_work import current

WATCHED = (PriceItem, Merchant, MerchantHours, Network)
_WATCHED_MAPPED = frozenset(WATCHED)
_lock = threading.Lock()
_generation = 0


def generation() -> int:
    """The catalogue's generation in this process (changes after a catalogue write commits)."""
    return _generation


def bump() -> None:
    """Forget every cached search (called after a commit that wrote the catalogue)."""
    global _generation
    with _lock:
        _generation += 1


@event.listens_for(Session, "after_flush")
def _note_flush(session, _context) -> None:
    if any(isinstance(obj, WATCHED) for obj in chain(session.new, session.dirty, session.deleted)):
        current(session).after_commit(bump)


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state) -> None:
    if state.is_select:
        return
    if (state.is_insert or state.is_update or state.is_delete) and any(
        mapper.class_ in _WATCHED_MAPPED for mapper in state.all_mappers
    ):
        current(state.session).after_commit(bump)


class ResultCache:
    """A bounded least-recently-used map, safe to share between a process's threads."""

    def __init__(self, size: int) -> None:
        self.size = max(0, int(size))
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        if not self.size:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
