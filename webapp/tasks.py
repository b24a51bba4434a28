"""Task queue (Huey) for after-commit work: SQLite storage by default, Redis when configured.

Run a worker with ``huey_consumer webapp.worker.huey`` (see README). Tests run tasks in-process.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from flask import current_app, has_app_context
from huey import RedisHuey, SqliteHuey
from huey.exceptions import TaskException  # noqa: F401  (re-exported for plugins)
from huey.storage import SqliteStorage

if TYPE_CHECKING:
    from flask import Flask

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


def _make_huey():
    redis_url = os.environ.get("NEIGHBOURLY_REDIS_URL")
    if redis_url:
        return RedisHuey("neighbourly", url=redis_url)
    path = os.environ.get("NEIGHBOURLY_TASKS_DB") or str(PROJECT_ROOT / "instance" / "tasks.db")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return _SqliteHuey("neighbourly", filename=path)


huey = _make_huey()
_worker_app: Flask | None = None


def app_for_task() -> Flask:
    """The current app (immediate mode, tests) or one app built for this worker process."""
    global _worker_app
    if has_app_context():
        return current_app._get_current_object()
    if _worker_app is None:
        from webapp import create_app

        _worker_app = create_app()
    return _worker_app


def use_app(app: Flask) -> None:
    """The app a worker process runs its tasks in (set by ``webapp.worker``)."""
    global _worker_app
    _worker_app = app


def configure(app: Flask) -> None:
    """Bind the queue to an app: immediate mode for tests, periodic jobs from plugins."""
    huey.immediate = bool(app.config.get("TASKS_IMMEDIATE"))
    if not huey.immediate and app.config.get("REDIS_URL") and not isinstance(huey, RedisHuey):
        log.warning("NEIGHBOURLY_REDIS_URL is set in config but not in the environment of the queue")


_periodic_registered = False


def register_periodic_once(registry) -> None:
    """Periodic jobs are module-level registrations on the queue: register them once per process."""
    global _periodic_registered
    if _periodic_registered:
        return
    _periodic_registered = True
    registry.pm.hook.neighbourly_register_periodic_tasks(huey=huey)


COMMITTED_HOOKS = {
    "purchase": "neighbourly_purchase_committed",
    "membership": "neighbourly_membership_committed",
}


def dispatch_committed(merchant: Merchant, entity: str, object_id: int) -> None:
    """Queue the after-commit hooks of ``entity`` for the merchant's enabled plugins.

    One task per committed object (not one per plugin) keeps the queue's cost per purchase flat;
    inside it each plugin runs isolated, and only a failing plugin is queued again for retries.
    Nothing is queued when no enabled plugin implements the hook. Called right after a commit:
    the merchant's id comes from its identity, so an expired instance is not loaded again.
    """
    from sqlalchemy import inspect

    from webapp.plugins import hooks_for

    names = hooks_for(merchant).implementers(COMMITTED_HOOKS[entity])
    if names:
        identity = inspect(merchant).identity
        merchant_id = identity[0] if identity else merchant.id
        run_committed_hooks(entity, object_id, merchant_id, list(names))


def _end_callers_transaction() -> None:
    """In immediate mode a task runs inside the caller's app context, right after its commit.

    The caller's session may have re-read an expired attribute since, and on SQLite every
    transaction holds the write lock (``BEGIN IMMEDIATE``): the task's own session would wait for
    it and fail with "database is locked". The caller has committed its work, so ending that
    read-only transaction is safe; it is ended without expiring what the caller holds, as a
    worker process (which has no caller and skips this) leaves it too.
    """
    if has_app_context():
        from webapp.extensions import commit_without_expiring, db

        session = db.session()
        if session.in_transaction():
            commit_without_expiring(session)


COMMITTED_RETRIES = 5
COMMITTED_RETRY_DELAY = 30


def _run_one_committed_hook(entity: str, object_id: int, merchant_id: int, plugin_name: str) -> None:
    """Call one plugin's after-commit hook in a fresh session; raises what the hook raised."""
    app = app_for_task()
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import Membership, Merchant, Purchase
        from webapp.plugins import is_enabled, registry
        from webapp.timezones import use_network_zone

        merchant = db.session.get(Merchant, merchant_id)
        model = Purchase if entity == "purchase" else Membership
        obj = db.session.get(model, object_id)
        if merchant is None or obj is None:
            return
        use_network_zone(merchant.network)  # letters and e-mails show the street's local times
        if plugin_name != "core" and not is_enabled(merchant, plugin_name):
            return
        reg = registry()
        others = [
            plugin for name, plugin in reg.pm.list_name_plugin() if name != plugin_name
        ]
        caller = reg.pm.subset_hook_caller(COMMITTED_HOOKS[entity], remove_plugins=others)
        try:
            caller(merchant=merchant, **{entity: obj})
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception(
                "after-commit hook of %s failed for %s %s; will retry", plugin_name, entity, object_id
            )
            raise
        finally:
            db.session.remove()


@huey.task()
def run_committed_hooks(entity: str, object_id: int, merchant_id: int, plugin_names: list[str]) -> None:
    """First attempt for every plugin; a plugin that fails gets its own retried task."""
    _end_callers_transaction()
    for plugin_name in plugin_names:
        try:
            _run_one_committed_hook(entity, object_id, merchant_id, plugin_name)
        except Exception:  # noqa: BLE001 - isolated per plugin; logged above, retried below
            run_committed_hook.schedule(
                args=(entity, object_id, merchant_id, plugin_name),
                delay=COMMITTED_RETRY_DELAY,
                retries=COMMITTED_RETRIES - 1,
                retry_delay=COMMITTED_RETRY_DELAY,
            )


@huey.task(retries=COMMITTED_RETRIES, retry_delay=COMMITTED_RETRY_DELAY)
def run_committed_hook(entity: str, object_id: int, merchant_id: int, plugin_name: str) -> None:
    """Run one plugin's after-commit hook in isolation (retries); a failure is logged and retried."""
    _end_callers_transaction()
    _run_one_committed_hook(entity, object_id, merchant_id, plugin_name)


@huey.task(retries=3, retry_delay=60)
def send_email_task(message: dict) -> None:
    """Send one e-mail built by ``webapp.mail``; retried on SMTP failures."""
    app = app_for_task()
    with app.app_context():
        from webapp.mail import deliver

        deliver(message)
