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
        db.engine.dispose()
    assert diffs == [], f"models and migrations disagree: {diffs[:5]}"


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
