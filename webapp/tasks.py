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


def _make_huey():
    redis_url = os.environ.get("NEIGHBOURLY_REDIS_URL")
    if redis_url:
        # Short socket timeouts: a Redis that hangs must not hang the request handing work over
        # (the outbox keeps it); the consumer's blocking read (1 s) stays below them.
        from redis import ConnectionPool

        pool = ConnectionPool.from_url(
            redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
        return RedisHuey("neighbourly", connection_pool=pool)
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


def _email_message(payload: dict) -> None:
    from webapp.mail import deliver

    deliver(payload)


def _register_core_handlers() -> None:
    from webapp import outbox

    outbox.handler(
        "committed", max_attempts=COMMITTED_RETRIES, backoff=lambda attempt: COMMITTED_RETRY_DELAY * attempt
    )(_committed_message)
    outbox.handler("email", max_attempts=8)(_email_message)


_register_core_handlers()


@huey.task()
def run_outbox_messages(message_ids: list[int]) -> int:
    """Run outbox messages handed over after a commit or by the relay; returns those completed."""
    app = app_for_task()
    with app.app_context():
        from webapp import outbox
        from webapp.extensions import db

        try:
            return sum(outbox.run_message(db.session, message_id) for message_id in message_ids)
        finally:
            db.session.remove()


def relay_outbox(purge: bool = True) -> int:
    """Hand over due outbox messages no request handed over (and purge old done ones)."""
    app = app_for_task()
    with app.app_context():
        from webapp import outbox
        from webapp.extensions import db

        try:
            relayed = outbox.relay_due(db.session)
            if purge:
                outbox.purge_done(db.session)
            return relayed
        finally:
            db.session.remove()


@huey.task()
def run_customer_import(import_id: int) -> None:
    """Import (or resume) a customer import in committed batches, then e-mail its summary."""
    app = app_for_task()
    with app.app_context():
        from flask import url_for

        from webapp.extensions import db
        from webapp.models import CustomerImport, Merchant
        from webapp.services import imports
        from webapp.timezones import use_network_zone

        try:
            job = db.session.get(CustomerImport, import_id)
            merchant = db.session.get(Merchant, job.merchant_id) if job else None
            if job is None or merchant is None:
                return
            use_network_zone(merchant.network)
            job = imports.run(db.session, import_id)
            with app.test_request_context(base_url=app.config["PUBLIC_URL"]):
                link = url_for("business.import_status", merchant_slug=merchant.slug,
                               import_id=job.id, _external=True)
            imports.send_summary(db.session, job, link)
        finally:
            db.session.remove()


@huey.task()
def check_customer_import(import_id: int) -> None:
    """The dry run of a large customer import, kept with it for the owner's page."""
    app = app_for_task()
    with app.app_context():
        from webapp.extensions import db
        from webapp.services import imports

        try:
            imports.check(db.session, import_id)
        finally:
            db.session.remove()
