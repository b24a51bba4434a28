"""Alembic builds the whole schema from empty on SQLite and PostgreSQL, one branch per plugin."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from tests.conftest import PG_ADMIN_URL, make_app
from webapp.extensions import db, migrate
from webapp.services.fulltext import fulltext_tables

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_database_url(backend, tmp_path, request):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    request.getfixturevalue("postgres_url")  # PostgreSQL must be there (fails under CI if not)
    name = f"neighbourly_migrations_{tmp_path.name[-12:].replace('-', '_').lower()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fulltext_object(diff) -> bool:
    """The full-text service's SQLite FTS5 tables and PostgreSQL GIN index live outside the models
    (DDL events create them with the table); the service's tests check they work."""
    if not isinstance(diff, tuple) or len(diff) < 2:
        return False
    name = getattr(diff[1], "name", None)
    return diff[0] in ("remove_table", "remove_index") and name in fulltext_tables()


def _significant(diffs):
    """Differences that matter: tables, columns, indexes, constraints (not type spelling)."""
    return [
        diff
        for diff in diffs
        if not (isinstance(diff, list) and diff and diff[0][0] == "modify_type")
        and not _fulltext_object(diff)
    ]


def test_upgrade_heads_builds_the_schema_the_models_describe(empty_database_url):
    app = make_app(empty_database_url)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision="heads")
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"render_as_batch": True})
            diffs = _significant(compare_metadata(context, db.metadata))
            narrow = _narrower_than_the_models(connection)
        db.engine.dispose()
    assert diffs == [], f"models and migrations disagree: {diffs[:5]}"
    assert narrow == [], f"64-bit in the models, 32-bit in the migrated database: {narrow}"


def _narrower_than_the_models(connection) -> list[str]:
    """Columns the models declare ``BigInteger`` (money, points) that the migrations left 32-bit.
    Type spelling is not compared above; this width is (SQLite's integers are all 64-bit)."""
    if connection.dialect.name != "postgresql":
        return []
    import sqlalchemy as sa

    declared = {
        (table.name, column.name)
        for table in db.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, sa.BigInteger)
    }
    assert len(declared) > 40  # the core's and the plugins' money and points columns
    found = set(connection.execute(sa.text(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type = 'bigint'"
    )).all())
    return sorted(f"{table}.{column}" for table, column in declared - found)


def test_every_plugin_with_tables_has_its_own_labelled_branch(app):
    config = migrate.get_config(directory=str(ROOT / "migrations"))
    script = ScriptDirectory.from_config(config)
    labels = {
        label for revision in script.walk_revisions() for label in (revision.branch_labels or ())
    }
    assert "core" in labels
    registry = app.extensions["neighbourly"]
    for name, module in registry.modules.items():
        plugin_tables = [table for table in db.metadata.tables if table.startswith(f"{name}_")]
        if plugin_tables:
            assert name in labels, f"plugin {name} has tables {plugin_tables} but no Alembic branch"
            folder = Path(module.__file__).parent / "migrations" / "versions"
            assert folder.is_dir()


def _revision_files():
    yield from (ROOT / "migrations" / "versions").glob("*.py")
    yield from (ROOT / "plugins").glob("*/migrations/versions/*.py")


def test_revisions_spell_out_their_tables_instead_of_reading_the_live_models():
    # A revision built from today's models breaks as soon as a later revision adds a column:
    # a fresh `upgrade heads` would create the column twice.
    offenders = []
    for path in _revision_files():
        source = path.read_text(encoding="utf-8")
        if "metadata.tables" in source or re.search(
            r"^\s*from (plugins|webapp)\b.* import", source, re.M
        ):
            offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == []


# --------------------------------------------------------------------------- core_0009: reason kinds

# Old reason sentences the core wrote, and what core_0009 makes of them.
OLD_REASONS = [
    ("Paid with points, purchase #12", "redeem", {"purchase": 12}),
    ("Cashback 2.5% on purchase #12", "cashback", {"purchase": 12, "rate_bp": 250}),
    ("Cashback 5% on purchase #7", "cashback", {"purchase": 7, "rate_bp": 500}),
    ("Refund of purchase #12: Paid with points, purchase #12", "refund",
     {"purchase": 12, "reversed": {"kind": "redeem", "params": {"purchase": 12}}}),
    ("Refund of purchase #9: Survey: How did we do?", "refund",
     {"purchase": 9, "reversed": {"kind": "note", "params": {"text": "Survey: How did we do?"}}}),
    ("Points expired", "expired", {}),
    ("Welcome bonus", "welcome", {}),
    ("Birthday bonus 2026", "birthday", {"year": 2026}),
    ("Imported from the previous program", "imported", {}),
    ("Broken cup, sorry", "note", {"text": "Broken cup, sorry"}),
    ("Cashback 2.555% on purchase #3", "note", {"text": "Cashback 2.555% on purchase #3"}),
    ("Welcome bonus!", "note", {"text": "Welcome bonus!"}),
]


def _insert_filled(connection, table, **values):
    """Insert one row giving every required column a plain value (the schema of that revision)."""
    import datetime as dt

    import sqlalchemy as sa

    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.server_default is not None:
            continue
        if column.primary_key and column.name == "id":
            continue
        kind = column.type
        if isinstance(kind, sa.Boolean):
            row[column.name] = False
        elif isinstance(kind, sa.Integer):
            row[column.name] = 1
        elif isinstance(kind, sa.DateTime):
            row[column.name] = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        elif isinstance(kind, sa.Date):
            row[column.name] = dt.date(2026, 1, 1)
        elif isinstance(kind, sa.JSON):
            row[column.name] = []
        else:
            length = getattr(kind, "length", None) or 20
            row[column.name] = f"{column.name}-{table.name}"[:length]
    return connection.execute(sa.insert(table).values(**row).returning(table.c.id)).scalar_one()


def test_core_0009_turns_old_reason_sentences_into_kinds_and_parameters(empty_database_url):
    import sqlalchemy as sa

    app = make_app(empty_database_url)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision="core_0008_webhook_events")
        old = sa.MetaData()
        old.reflect(bind=db.engine, only=["users", "networks", "merchants", "memberships", "ledger_entries"])
        with db.engine.begin() as connection:
            user = _insert_filled(connection, old.tables["users"], email="a@example.com", card_code="A1")
            network = _insert_filled(connection, old.tables["networks"], currency="KZT")
            merchant = _insert_filled(connection, old.tables["merchants"], network_id=network, status="active")
            card = _insert_filled(connection, old.tables["memberships"], user_id=user, merchant_id=merchant,
                                  balance=0)
            ids = [
                _insert_filled(connection, old.tables["ledger_entries"], membership_id=card,
                               merchant_id=merchant, kind="adjust", amount=0, reason=text, source="core")
                for text, _kind, _params in OLD_REASONS
            ]
        upgrade(directory=str(ROOT / "migrations"), revision="core_0009_ledger_reason_kinds")
        new = sa.MetaData()
        new.reflect(bind=db.engine, only=["ledger_entries"])
        entries = new.tables["ledger_entries"]
        assert "reason" not in entries.c  # the sentence column is gone: nothing can read it again
        with db.engine.connect() as connection:
            rows = connection.execute(
                sa.select(entries.c.id, entries.c.reason_kind, entries.c.reason_params).order_by(entries.c.id)
            ).all()
        db.engine.dispose()
    import json

    converted = [(kind, json.loads(params) if isinstance(params, str) else params) for _id, kind, params in rows]
    assert [row[0] for row in rows] == ids
    assert converted == [(kind, params) for _text, kind, params in OLD_REASONS]
