"""Bring a database's schema up to date from the command line (``flask demo``, ``network-create``)."""

from __future__ import annotations

from webapp.extensions import db


def ensure_schema() -> None:
    """Bring the schema up to date with Alembic (core and every plugin branch).

    A database whose tables were made without migrations (the test fixtures use ``create_all``)
    only gets missing tables created.
    """
    from flask_migrate import upgrade
    from sqlalchemy import inspect

    tables = set(inspect(db.engine).get_table_names())
    if not tables or "alembic_version" in tables:
        upgrade(revision="heads")
    else:
        db.create_all()
