"""Shared fixtures: a fresh app per test on real SQLite (WAL file) and real PostgreSQL, factories,
and a test client that carries CSRF tokens like a browser does."""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import uuid

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, text

from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db

PG_ADMIN_URL = os.environ.get("NEIGHBOURLY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("NEIGHBOURLY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def _postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def require_service(available: bool, name: str) -> None:
    """Skip locally when a service is missing; under CI a missing service is a failure."""
    if not available:
        if IN_CI:
            pytest.fail(f"{name} is required under CI but is not reachable")
        pytest.skip(f"{name} not reachable")


def redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_url():
    """A throw-away PostgreSQL database for this test run, dropped at the end."""
    require_service(_postgres_available(), "PostgreSQL")
    name = f"neighbourly_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_pg_schema_ready: dict[str, frozenset[str]] = {}


def make_app(database_url: str, **overrides):
    config = {"DATABASE_URL": database_url, **overrides}
    if os.environ.get("NEIGHBOURLY_TEST_PLUGINS") and "PLUGINS" not in overrides:
        # Developers can narrow the plugin set (a JSON list) while a plugin is half-written.
        import json

        config["PLUGINS"] = json.loads(os.environ["NEIGHBOURLY_TEST_PLUGINS"])
    app = create_app({**{k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}, **config})
    return app


def _fresh_schema(app, backend: str, url: str) -> None:
    with app.app_context():
        if backend == "sqlite":
            db.create_all()
            return
        tables = frozenset(db.metadata.tables)
        if url not in _pg_schema_ready:
            db.drop_all()
            db.create_all()
        elif tables - _pg_schema_ready[url]:
            db.create_all()  # a plugin's models were imported since: add just its tables
        _pg_schema_ready[url] = _pg_schema_ready.get(url, frozenset()) | tables
        names = ", ".join(f'"{name}"' for name in sorted(_pg_schema_ready[url]))
        # A test may set a short statement timeout; emptying every table is not what it measures.
        db.session.execute(text("SET LOCAL statement_timeout = 0"))
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        db.session.commit()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Which real database the test runs on; every test using ``app`` runs on both."""
    return request.param


@pytest.fixture
def database_url(backend, tmp_path, request):
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def app_overrides():
    """Override in a test module to change config for its apps."""
    return {}


@pytest.fixture
def app(backend, database_url, app_overrides, tmp_path):
    app = make_app(database_url, UPLOAD_FOLDER=str(tmp_path / "uploads"), **app_overrides)
    app.test_client_class = NeighbourlyClient
    _fresh_schema(app, backend, database_url)
    with app.app_context():
        yield app
        db.session.remove()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def patient_sqlite(app):
    """SQLite's busy handler is not fair: with 20-50 writers on a loaded two-core machine one
    thread can wait past the app's busy timeout. Concurrency tests check exactly-once effects,
    not that starvation bound, so their SQLite connections wait up to 60 s."""
    engine = db.engine

    def longer_wait(dbapi_connection, connection_record):
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA busy_timeout=60000")

    event.listen(engine, "connect", longer_wait)
    engine.dispose()  # new connections pick the setting up
    yield
    event.remove(engine, "connect", longer_wait)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class NeighbourlyClient(FlaskClient):
    """A test client that fetches a CSRF token from a page, as a browser form would carry it."""

    def open(self, *args, **kwargs):
        from flask import g, has_app_context

        # Requests share the test's app context, so ``g`` outlives a request: without this, the
        # user Flask-Login cached for one client (or one request) would answer for the next.
        # Flask-Babel caches the request's locale there too.
        if has_app_context():
            g.pop("_login_user", None)
            g.pop("_flask_babel", None)
            g.pop("network_timezone", None)  # the page's network zone, likewise per request
        return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        from flask import g, has_app_context

        if has_app_context():  # requests share the test's app context: drop the cached token
            g.pop("csrf_token", None)
        response = self.get("/auth/login")
        if response.status_code != 200:  # signed in: the sign-in page redirects; any page has it
            response = self.get("/no-such-page-for-the-csrf-token")
        page = response.get_data(as_text=True)
        match = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert match, "no CSRF token on the sign-in page"
        return match.group(1)

    def post_form(self, url: str, data: dict | None = None, htmx: bool = False, **kwargs):
        data = dict(data or {})
        token = self.csrf_token()
        headers = dict(kwargs.pop("headers", {}) or {})
        if htmx:
            headers["HX-Request"] = "true"
            headers["X-CSRFToken"] = token
        else:
            data.setdefault("csrf_token", token)
        return self.post(url, data=data, headers=headers, **kwargs)

    def login(self, user, password: str = PASSWORD):
        response = self.post_form("/auth/login", {"email": user.email, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        return response


# --------------------------------------------------------------------------- factories


@pytest.fixture
def make_user(app):
    from webapp.services import accounts

    def make_user(name: str | None = None, email: str | None = None, phone: str | None = None, **extra):
        number = next(_counter)
        user = accounts.register_user(
            db.session,
            email=email or f"person{number}@example.com",
            password=PASSWORD,
            name=name or f"Person {number}",
            phone=phone,
        )
        for key, value in extra.items():
            setattr(user, key, value)
        db.session.commit()
        return user

    return make_user


@pytest.fixture
def make_network(app, make_user):
    from webapp.services import merchants

    def make_network(name: str | None = None, currency: str = "KZT", operator=None):
        number = next(_counter)
        operator = operator or make_user(name=f"Operator {number}")
        return merchants.create_network(
            db.session, name or f"Street {number}", currency, operator, slug=f"street-{number}"
        )

    return make_network


@pytest.fixture
def network(make_network):
    return make_network()


@pytest.fixture
def make_merchant(app, make_user, network):
    from webapp.services import merchants

    def make_merchant(
        name: str | None = None, owner=None, status: str = "active", cashback_bp: int = 500,
        max_points_share_pct: int = 50, category: str = "cafe", in_network=None, cashiers=(),
    ):
        from webapp.models import StaffRole

        owner = owner or make_user(name="Owner")
        merchant = merchants.apply_to_network(
            db.session, owner, in_network or network, name=name or f"Shop {next(_counter)}",
            category=category, cashback_bp=cashback_bp, max_points_share_pct=max_points_share_pct,
            address="1 Abay Avenue", opening_hours="Mon-Sun 9:00-21:00",
        )
        merchant.status = status
        for cashier in cashiers:
            db.session.add(StaffRole(user_id=cashier.id, merchant_id=merchant.id, role="cashier"))
        db.session.commit()
        assert merchant.owner == owner  # the real relationship: the applicant owns the shop
        return merchant

    return make_merchant


@pytest.fixture
def make_member(app, make_user):
    from webapp.services import memberships

    def make_member(merchant, user=None, points: int = 0):
        user = user or make_user()
        membership, _ = memberships.join_merchant(
            db.session, user, merchant, consent_given=True, text_version="test"
        )
        if points:
            give_points(membership, points)
        return membership

    return make_member


def give_points(membership, amount: int, reason: str = "Welcome bonus") -> None:
    """Credit points through the guarded ledger service (never by writing the balance)."""
    from webapp.services.ledger import Posting, post

    post(db.session, [Posting(membership.id, membership.merchant_id, "adjust", amount, reason)])
    db.session.commit()
    db.session.refresh(membership)


@pytest.fixture(name="give_points")
def give_points_fixture(app):
    """``give_points(membership, amount, reason=...)``: a guarded ledger credit."""
    return give_points
