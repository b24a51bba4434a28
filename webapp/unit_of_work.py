"""The unit of work: one business transaction, who ends it, and what it knows while it runs.

A service that changes data does its work inside ``unit_of_work(session)``::

    def add_news(session, merchant, form) -> Post:
        check(form)                      # raises before anything is written
        with unit_of_work(session):      # commits when the block ends, rolls back if it raises
            post = Post(...)
            session.add(post)
        return post

The block commits when it ends without an error and rolls back when it raises, so views never
roll back by hand: a ``NeighbourlyError`` reaches the view with the session clean. Blocks nest:
an inner block (a service called by another service) joins the outer one, and only the outermost
block commits.

Everything a transaction keeps on the side lives on the session's one ``UnitOfWork`` (created
on first use, ``current(session)``), with a stated lifetime instead of ad-hoc caches:

- per merchant (``unit.merchant(m)``): the enabled plugins, the hook caller and the plugins'
  saved settings, read with one statement. Enabled plugins and hooks last while the merchant
  instance does (a request); settings last for the transaction. Writing a plugin row, or
  rolling back after writing one, forgets them, so the next call reads again.
- per plugin (``unit.scratch("offers")``): a dict a plugin may keep things in while it works
  outside a request (in a request, ``webapp.plugins.scratch`` keeps it on the request, as a
  page may commit midway); emptied at every commit and rollback.
- the outbox: ids of the messages written in the transaction, handed to the task queue after
  its commit and forgotten on rollback (``webapp.outbox``), and the messages of an open
  ``outbox.batched`` block.
- the sale's deferred writes: ledger rows and merchant-week increments collected by
  ``batched_postings`` and written when that block ends.
- the time zones of merchants (a network's zone does not change while a request runs).
- the cards whose balance a posting moved (``ledger``): a sale keeps its card loaded through the
  commit, with the figures its own UPDATE returned, only when that UPDATE was the card's one change.
- functions to call after the commit (``unit.after_commit``), such as dropping the street
  search's cached pages after the catalogue changed.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session

if TYPE_CHECKING:
    from webapp.models import Merchant
    from webapp.plugins import MerchantHooks

_KEY = "neighbourly.unit_of_work"


@dataclass
class MerchantState:
    """What a transaction knows of one merchant's plugins (see ``webapp.plugins``)."""

    instance: weakref.ref
    enabled: frozenset[str] | None = None
    settings: dict[str, dict] | None = None  # saved settings by plugin name (this transaction)
    hooks: dict[frozenset[str], MerchantHooks] = field(default_factory=dict)


class UnitOfWork:
    """The session's side state for its current transaction (see the module's docstring)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.depth = 0  # open ``unit_of_work`` blocks
        self._merchants: dict[int, MerchantState] = {}
        self._scratch: dict[str, dict[str, Any]] = {}
        self.plugin_rows_written = False  # since the transaction began
        # The outbox: (id, delay) of rows written and not committed; messages of a batched block.
        self.outbox_written: list[tuple[int, float]] = []
        self.outbox_batch: list[tuple[dict[str, Any], float]] | None = None
        # ``batched_postings``: ledger rows and merchant-week increments written at its end.
        self.ledger_rows: list[dict[str, Any]] | None = None
        self.weekly: dict[tuple[int, date], dict[str, int]] | None = None
        self.zones: dict[int, ZoneInfo] = {}
        # Cards whose balance a posting moved in this transaction (``ledger``): a sale keeps its
        # card loaded for the receipt only when its own UPDATE was the card's one change.
        self.balances_moved: set[int] = set()
        # Functions to call once the transaction commits (``after_commit``).
        self._after_commit: dict[object, object] = {}
        # Loaded objects the commit leaves as they are (``keep_loaded``).
        self._kept: list[object] = []
        self._kept_types: tuple[type, ...] = ()

    # ------------------------------------------------------------------ merchants' plugins

    def merchant(self, merchant: Merchant) -> MerchantState:
        """This transaction's state of ``merchant``; a new instance of it starts afresh."""
        state = self._merchants.get(merchant.id)
        if state is None or state.instance() is not merchant:
            state = self._merchants[merchant.id] = MerchantState(weakref.ref(merchant))
        return state

    def forget_merchant(self, merchant_id: int) -> None:
        """Read the merchant's plugins again next time (its plugin rows changed)."""
        self._merchants.pop(merchant_id, None)

    def plugin_row_written(self, merchant_id: int) -> None:
        self.plugin_rows_written = True
        self.forget_merchant(merchant_id)

    def after_commit(self, function) -> None:
        """Call ``function()`` once after this transaction commits (once however often it is
        asked for); forgotten if it rolls back. For work outside the database that must follow
        only committed data, such as dropping a process cache."""
        self._after_commit[function] = function

    def keep_loaded(self, *instances: object, types: tuple[type, ...] = ()) -> None:
        """Let the commit leave these objects (and every loaded one of ``types``) loaded instead
        of expiring them, because the caller knows the transaction wrote all of their columns or
        none: what comes after the commit (a receipt, the after-commit dispatch) reads them
        without loading them again. Everything else is expired as a commit always does."""
        self._kept.extend(instance for instance in instances if instance is not None)
        self._kept_types += types

    def keep_all_loaded(self) -> None:
        """Let the commit leave every loaded object as it is (the transaction changed none of
        them behind the ORM's back, e.g. it only stamped a column the caller sets by hand)."""
        self._kept_types = (object,)

    def _commit(self) -> None:
        session, kept, types = self.session, self._kept, self._kept_types
        self._kept, self._kept_types = [], ()
        if not kept and not types:
            session.commit()
            return
        from webapp.extensions import commit_without_expiring

        if commit_without_expiring(session):
            keep = {id(instance) for instance in kept}
            for instance in list(session.identity_map.values()):
                if id(instance) not in keep and not isinstance(instance, types):
                    session.expire(instance)

    # ------------------------------------------------------------------ plugins' scratch space

    def scratch(self, owner: str) -> dict[str, Any]:
        """A plugin's dict for this transaction (``owner`` is the plugin's name)."""
        return self._scratch.setdefault(owner, {})

    # ------------------------------------------------------------------ transaction ends

    def _committed(self) -> list[tuple[int, float]]:
        written, self.outbox_written = self.outbox_written, []
        self.balances_moved = set()
        callbacks, self._after_commit = list(self._after_commit.values()), {}
        for function in callbacks:
            function()
        for state in self._merchants.values():
            state.settings = None  # the next transaction reads them again
        self._scratch.clear()
        self.plugin_rows_written = False
        return written

    def _rolled_back(self, *, nested: bool) -> None:
        self._kept, self._kept_types = [], ()
        if not nested:
            self.outbox_written = []
            self.balances_moved = set()
            self._after_commit = {}
        if self.plugin_rows_written:
            self._merchants.clear()  # what was read after the write may be gone
        else:
            for state in self._merchants.values():
                state.settings = None
        self._scratch.clear()
        if not nested:
            self.plugin_rows_written = False


def _real(session: Session) -> Session:
    return session() if isinstance(session, scoped_session) else session


def current(session: Session) -> UnitOfWork:
    """The session's unit of work, created on first use."""
    real = _real(session)
    unit = real.info.get(_KEY)
    if unit is None:
        unit = real.info[_KEY] = UnitOfWork(real)
    return unit


def existing(session: Session) -> UnitOfWork | None:
    """The session's unit of work if one was created (for listeners that must not create one)."""
    return _real(session).info.get(_KEY)


@contextmanager
def unit_of_work(session: Session, *, join: bool = True) -> Iterator[UnitOfWork]:
    """Run a business transaction: commit when the block ends, roll back if it raises.

    Inside another block it joins that one; the outermost block commits or rolls back. With
    ``join=False`` (a background job around its batches) blocks inside commit on their own, and
    this one commits what is left when it ends.
    """
    unit = current(session)
    if join:
        unit.depth += 1
    try:
        yield unit
    except BaseException:
        if join:
            unit.depth -= 1
        if unit.depth == 0:
            _roll_back(unit.session)
        raise
    if join:
        unit.depth -= 1
    if unit.depth == 0:
        try:
            unit._commit()
        except BaseException:
            _roll_back(unit.session)
            raise


def _roll_back(session: Session) -> None:
    try:
        session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone: the error that got us here is reported
        session.close()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    unit = session.info.get(_KEY)
    if unit is None:
        return
    written = unit._committed()
    if written:
        from webapp import outbox

        outbox.hand_over(written)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    unit = session.info.get(_KEY)
    if unit is not None:
        unit._rolled_back(nested=previous_transaction.nested)
