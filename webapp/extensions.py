"""Flask extensions, created unbound here and attached to the app in ``create_app``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

import psycopg
from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mailman import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from psycopg.types.numeric import NumericLoader
from sqlalchemy import MetaData, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


T = TypeVar("T")


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention, so migrations name things alike."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def upsert_insert(dialect: Session | str):
    """``insert`` with ``on_conflict_do_*`` for the dialect of a session (or a dialect name):
    PostgreSQL's or SQLite's, the two databases Neighbourly runs on."""
    name = dialect if isinstance(dialect, str) else dialect.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


def commit_without_expiring(session: Session) -> bool:
    """Commit, leaving every loaded object as it is (the caller knows which ones cannot be stale).

    Returns the session's usual ``expire_on_commit``, for callers that then expire the rest.
    """
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire
    return expire


def per_dialect(build: Callable[[str], T]) -> Callable[[Session], T]:
    """``get(session)`` returns ``build(dialect name)``, built once per dialect.

    For hot paths that prepare their statements once (upserts differ between SQLite and
    PostgreSQL) and run them on every call.
    """
    built: dict[str, T] = {}

    def get(session: Session) -> T:
        dialect = session.get_bind().dialect.name
        found = built.get(dialect)
        if found is None:
            found = built[dialect] = build(dialect)
        return found

    return get
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
mail = Mail()
htmx = HTMX()


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, connection_record) -> None:
    """WAL and foreign keys; hand transaction control to SQLAlchemy's begin event. (The busy
    timeout is the connection's ``timeout``, set from the app's config in ``create_app``.)"""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # pysqlite's own transaction handling defers BEGIN and lets concurrent writers race; take it over.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # SQLite's lower() folds ASCII only; customers search Cyrillic and Kazakh names too.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)


def _unicode_lower(value):
    return value.lower() if isinstance(value, str) else value


class _WholeNumericLoader(NumericLoader):
    """Money and points are ``bigint`` columns, and PostgreSQL adds bigints up as ``numeric``: a
    whole number of those comes back as ``int`` (as SQLite's sums do), a fraction as ``Decimal``."""

    def load(self, data):
        text = bytes(data)
        if text.lstrip(b"-").isdigit():
            return int(text)
        return super().load(data)


@event.listens_for(Engine, "connect")
def _postgres_on_connect(dbapi_connection, connection_record) -> None:
    if isinstance(dbapi_connection, psycopg.Connection):
        dbapi_connection.adapters.register_loader("numeric", _WholeNumericLoader)


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(connection) -> None:
    """Every SQLite transaction takes the write lock up front: no lock upgrades, no deadlocks."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
