"""Task queue (Huey) for after-commit work: SQLite storage by default, Redis when configured.

Run a worker with ``huey_consumer webapp.worker.huey`` (see README). Tests run tasks in-process.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import current_app
from huey import Huey, RedisHuey, SqliteHuey
from huey.exceptions import TaskException  # noqa: F401  (re-exported for plugins)
from huey.storage import SqliteStorage

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.orm import Session

    from webapp.models import Merchant

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _TaskStore(SqliteStorage):
    """Huey's SQLite store with the app database's durability: WAL with ``synchronous=NORMAL``.

    Huey leaves SQLite's default (FULL: an fsync on every commit, about 1.2 ms of a sale's
    enqueue here). NORMAL survives any crash of the application and loses at most the last
    commits on a power cut, the same as the database the sale itself is committed to
    (``webapp.extensions``), so a queued task is exactly as durable as the sale it follows.
    """

    def _create_connection(self):
        conn = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


class _SqliteHuey(SqliteHuey):
    storage_class = _TaskStore


class TaskQueue:
    """One app's task queue: its Huey instance, built from the app's config in the factory.

    Tasks are declared at import time with :func:`task` and bound here to this queue and to the app
    they run in: every task (periodic ones included) runs inside an application context of this
    app, pushed before it starts and popped after it ends, in the worker and in immediate mode.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.huey = _make_huey(app)
        self.tasks: dict[str, Any] = {}
        self._contexts = threading.local()
        self.huey.pre_execute(name="neighbourly.app_context")(self._push_context)
        self.huey.post_execute(name="neighbourly.app_context")(self._pop_context)
        for declared in _DECLARED:
            self.tasks[declared.name] = self.huey.task(**declared.options)(declared.func)

    def _push_context(self, task) -> None:
        stack = getattr(self._contexts, "stack", None)
        if stack is None:
            stack = self._contexts.stack = []
        context = self.app.app_context()
        context.push()
        stack.append(context)

    def _pop_context(self, task, value, error) -> None:
        self._contexts.stack.pop().pop()

    def register_periodic(self, registry) -> None:
        """Periodic jobs of the core and of every loaded plugin, on this queue."""
        registry.pm.hook.neighbourly_register_periodic_tasks(huey=self.huey)


def _make_huey(app: Flask) -> Huey:
    config = app.config
    immediate = bool(config.get("TASKS_IMMEDIATE"))
    redis_url = config.get("REDIS_URL")
    if redis_url and not immediate:
        # Short socket timeouts: a Redis that hangs must not hang the request handing work over
        # (the outbox keeps it); the consumer's blocking read (1 s) stays below them.
        from redis import ConnectionPool

        pool = ConnectionPool.from_url(
            redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
        return RedisHuey("neighbourly", connection_pool=pool)
    if immediate:  # in memory: nothing touches a file
        return _SqliteHuey("neighbourly", immediate=True, filename=":memory:")
    path = config.get("TASKS_DB") or str(PROJECT_ROOT / "instance" / "tasks.db")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return _SqliteHuey("neighbourly", filename=path)


@dataclass(frozen=True)
class _Declared:
    name: str
    func: Callable[..., Any]
    options: dict[str, Any]


_DECLARED: list[_Declared] = []


class DeclaredTask:
    """A task declared at import time; calling it enqueues it on the current app's queue."""

    def __init__(self, declared: _Declared) -> None:
        self.declared = declared
        self.__doc__ = declared.func.__doc__
        self.__name__ = declared.func.__name__

    def _bound(self):
        return _queue_of().tasks[self.declared.name]

    def __call__(self, *args, **kwargs):
        return self._bound()(*args, **kwargs)

    def schedule(self, *args, **kwargs):
        return self._bound().schedule(*args, **kwargs)

    def call_local(self, *args, **kwargs):
        """Run the task's function here, now (tests and CLI)."""
        return self.declared.func(*args, **kwargs)


def task(**options) -> Callable[[Callable[..., Any]], DeclaredTask]:
    """Declare a task (``@tasks.task()``); each app's queue registers it when the app is built."""

    def decorate(func: Callable[..., Any]) -> DeclaredTask:
        declared = _Declared(f"{func.__module__}.{func.__qualname__}", func, options)
        _DECLARED.append(declared)
        return DeclaredTask(declared)

    return decorate


def queue(app: Flask | None = None) -> Huey:
    """The Huey instance of ``app`` (default: the current app)."""
    return _queue_of(app).huey


def _queue_of(app: Flask | None = None) -> TaskQueue:
    app = app or current_app._get_current_object()
    return app.extensions["neighbourly.tasks"]


def job(func: Callable[..., Any]) -> Callable[..., Any]:
    """Background work that needs the database: ``func(session, *args)`` runs on the session of
    the app context it runs in, ending its transactions with ``unit_of_work`` blocks (one per
    batch in a long job). The queue pushes a fresh context for every task it runs
    (:class:`TaskQueue`), so a job never looks for an app itself; called directly (tests, the
    CLI), it uses the caller's. An error rolls back what is open; on success what the job left
    open (its last reads) ends with an empty unit."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        from webapp.extensions import db
        from webapp.unit_of_work import unit_of_work

        with unit_of_work(db.session, join=False):
            return func(db.session, *args, **kwargs)

    return run


def merchant_task(plugin_name: str) -> Callable[[Callable[..., Any]], Callable[..., int]]:
    """Background work done for every active merchant that has ``plugin_name`` switched on:
    ``func(session, merchant, *args)`` runs once per merchant in a unit of work of its own, so a
    failure at one shop is logged and rolled back and the others still run. Returns the sum of
    what the calls returned (``None`` counts as 0)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., int]:
        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> int:
            from webapp import models
            from webapp.extensions import db
            from webapp.plugins import merchants_with_plugin
            from webapp.unit_of_work import unit_of_work

            session = db.session
            with unit_of_work(session):  # the list is read in a transaction of its own
                merchant_ids = [merchant.id for merchant in merchants_with_plugin(session, plugin_name)]
            total = 0
            for merchant_id in merchant_ids:
                try:
                    with unit_of_work(session):
                        merchant = session.get(models.Merchant, merchant_id)
                        total += func(session, merchant, *args, **kwargs) or 0
                except Exception:  # noqa: BLE001 - one shop's failure must not stop the others
                    log.exception("%s failed for merchant %s", func.__qualname__, merchant_id)
            return total

        return run

    return decorate


def configure(app: Flask) -> None:
    """Build the app's queue from its config (``TASKS_IMMEDIATE``, ``REDIS_URL``, ``TASKS_DB``)."""
    app.extensions["neighbourly.tasks"] = TaskQueue(app)


def register_periodic(app: Flask, registry) -> None:
    """Register the periodic jobs of the core and the app's plugins on the app's queue."""
    _queue_of(app).register_periodic(registry)


COMMITTED_HOOKS = {
    "purchase": "neighbourly_purchase_committed",
    "membership": "neighbourly_membership_committed",
}
COMMITTED_RETRIES = 5
COMMITTED_RETRY_DELAY = 30


def queue_committed(session: Session, merchant: Merchant, entity: str, object_id: int) -> None:
    """Write the after-commit hooks of ``entity`` for the merchant's enabled plugins to the outbox.

    Called inside the transaction that records the object, so the follow-up work is committed with
    it or not at all. One row per plugin (one INSERT for all) keeps each plugin isolated: its hook
    and the row's completion commit together, and only a failing plugin is retried. Nothing is
    written when no enabled plugin implements the hook.
    """
    from webapp import outbox
    from webapp.plugins import hooks_for

    names = hooks_for(merchant).implementers(COMMITTED_HOOKS[entity])
    if names:
        outbox.add_many(
            session,
            [
                ("committed", {"entity": entity, "id": object_id, "merchant_id": merchant.id, "plugin": name})
                for name in names
            ],
            merchant_id=merchant.id,
        )


def run_committed_hook(entity: str, object_id: int, merchant_id: int, plugin_name: str) -> None:
    """Call one plugin's after-commit hook in ``db.session``; raises what the hook raised.

    Skipped when the object is gone or the merchant has switched the plugin off meanwhile.
    """
    from webapp.extensions import db
    from webapp.models import Membership, Merchant, Purchase
    from webapp.plugins import is_enabled, registry
    from webapp.timezones import use_network_zone

    merchant = db.session.get(Merchant, merchant_id)
    obj = db.session.get(Purchase if entity == "purchase" else Membership, object_id)
    if merchant is None or obj is None:
        return
    use_network_zone(merchant.network)  # letters and e-mails show the street's local times
    if plugin_name != "core" and not is_enabled(merchant, plugin_name):
        return
    reg = registry()
    others = [plugin for name, plugin in reg.pm.list_name_plugin() if name != plugin_name]
    caller = reg.pm.subset_hook_caller(COMMITTED_HOOKS[entity], remove_plugins=others)
    try:
        caller(merchant=merchant, **{entity: obj})
    except Exception:
        log.exception(
            "after-commit hook of %s failed for %s %s; will retry", plugin_name, entity, object_id
        )
        raise


def _committed_message(payload: dict) -> None:
    run_committed_hook(payload["entity"], payload["id"], payload["merchant_id"], payload["plugin"])


def _register_core_handlers() -> None:
    from webapp import outbox

    outbox.handler(
        "committed", max_attempts=COMMITTED_RETRIES, backoff=lambda attempt: COMMITTED_RETRY_DELAY * attempt
    )(_committed_message)


_register_core_handlers()


@task()
def run_outbox_messages(message_ids: list[int]) -> int:
    """Run outbox messages handed over after a commit or by the relay; returns those completed."""
    from webapp import outbox
    from webapp.extensions import db

    return sum(outbox.run_message(db.session, message_id) for message_id in message_ids)


def relay_outbox(purge: bool = True) -> int:
    """Hand over due outbox messages no request handed over (and purge old done ones).

    Runs in an application context: the queue pushes one for its periodic job, the worker's relay
    thread and the CLI push their own.
    """
    from webapp import outbox
    from webapp.extensions import db

    relayed = outbox.relay_due(db.session)
    if purge:
        outbox.purge_done(db.session)
    return relayed


@task()
def run_customer_import(import_id: int) -> None:
    """Import (or resume) a customer import in committed batches, then e-mail its summary."""
    from flask import url_for

    from webapp.extensions import db
    from webapp.models import CustomerImport, Merchant
    from webapp.services import imports
    from webapp.timezones import use_network_zone

    job = db.session.get(CustomerImport, import_id)
    merchant = db.session.get(Merchant, job.merchant_id) if job else None
    if job is None or merchant is None:
        return
    use_network_zone(merchant.network)
    job = imports.run(db.session, import_id)
    app = current_app._get_current_object()
    with app.test_request_context(base_url=app.config["PUBLIC_URL"]):
        link = url_for("business.import_status", merchant_slug=merchant.slug, import_id=job.id, _external=True)
    imports.send_summary(db.session, job, link)


@task()
def check_customer_import(import_id: int) -> None:
    """The dry run of a large customer import, kept with it for the owner's page."""
    from webapp.extensions import db
    from webapp.services import imports

    imports.check(db.session, import_id)
