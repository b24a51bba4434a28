"""Fault tests: the site as an operator runs it (gunicorn, a worker), with a Redis and a
PostgreSQL of the test's own that the test stops and starts again."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD, PG_ADMIN_URL, _postgres_available, make_app, require_service
from tests.faults.services import PostgresServer, RedisServer
from tests.servers import Browser
from tests.smtp import SMTPSink
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, Purchase, StaffRole
from webapp.plugins import registry
from webapp.services import accounts, memberships, merchants

pytestmark = [pytest.mark.slow]


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def own_postgres():
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def smtp():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def fresh_database(request, tmp_path):
    """A database for gunicorn: a SQLite file, or a new database on the machine's PostgreSQL
    (which is not stopped: fault tests that stop PostgreSQL use ``own_postgres``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'site.db'}"
        return
    require_service(_postgres_available(), "PostgreSQL")
    name = f"neighbourly_fault_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Till:
    """A shop with a cashier and a customer who agreed to letters (thank-you e-mail per sale)."""

    database_url: str
    merchant_slug: str
    cashier_email: str
    membership_id: int
    customer_email: str


def seed_till(database_url: str) -> Till:
    app = make_app(database_url)
    with app.app_context():
        db.create_all()
        operator = accounts.register_user(db.session, "operator@example.com", PASSWORD, "Operator")
        network = merchants.create_network(db.session, "Fault Street", "KZT", operator, slug="fault-street")
        owner = accounts.register_user(db.session, "owner@example.com", PASSWORD, "Owner")
        merchant = merchants.apply_to_network(
            db.session, owner, network, name="Corner Bakery", category="cafe", cashback_bp=500,
        )
        merchant.status = "active"
        cashier = accounts.register_user(db.session, "cashier@example.com", PASSWORD, "Cashier")
        db.session.add(StaffRole(user_id=cashier.id, merchant_id=merchant.id, role="cashier"))
        db.session.commit()
        merchants.set_plugin_enabled(db.session, registry(), merchant, "letters", True, owner)
        customer = accounts.register_user(db.session, "aigerim@example.com", PASSWORD, "Aigerim Sadykova")
        membership, _ = memberships.join_merchant(
            db.session, customer, merchant, consent_given=True, text_version="test", marketing_consent=True,
        )
        till = Till(database_url, merchant.slug, cashier.email, membership.id, customer.email)
        db.session.remove()
        db.engine.dispose()
    return till


def site_env(till: Till, smtp: SMTPSink, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment the README's deployment section gives the site and the worker."""
    return {
        "NEIGHBOURLY_ENV": "development",
        "NEIGHBOURLY_DATABASE_URL": till.database_url,
        "NEIGHBOURLY_SECRET_KEY": f"k-{uuid.uuid4().hex}",
        "NEIGHBOURLY_TASKS_DB": str(tmp_path / "tasks.db"),
        "NEIGHBOURLY_MAIL_BACKEND": "smtp",
        "NEIGHBOURLY_MAIL_SERVER": "127.0.0.1",
        "NEIGHBOURLY_MAIL_PORT": str(smtp.port),
        "NEIGHBOURLY_PUBLIC_URL": "http://127.0.0.1",
        **extra,
    }


class Cashier(Browser):
    """A signed-in cashier whose till page keeps its CSRF token, as the open page in a browser does."""

    def __init__(self, port: int, till: Till) -> None:
        super().__init__()
        self.port, self.till = port, till
        self.token = ""

    def sign_in(self) -> None:
        token = self.csrf_token(self.port)
        status, headers, body = self.request(
            self.port, "POST", "/auth/login",
            {"email": self.till.cashier_email, "password": PASSWORD, "csrf_token": token},
        )
        assert status == 303, (status, body[:500])
        self.token = self.page_token(f"/business/{self.till.merchant_slug}/till")

    def page_token(self, path: str) -> str:
        status, _headers, page = self.get(self.port, path)
        assert status == 200, (status, page[:300])
        return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def sell(self, key: str, amount: str = "1000"):
        """Press Confirm at the till; returns (status, page)."""
        status, _headers, page = self.request(
            self.port, "POST", f"/business/{self.till.merchant_slug}/till/purchase",
            {"membership_id": str(self.till.membership_id), "amount": amount, "points": "0",
             "idempotency_key": key, "csrf_token": self.token},
        )
        return status, page

    def still_signed_in(self) -> bool:
        status, _headers, _page = self.get(self.port, f"/business/{self.till.merchant_slug}/till")
        return status == 200


def ledger_holds(database_url: str) -> tuple[int, bool, bool]:
    """(purchases, every balance equals its ledger, every purchase has its ledger rows)."""
    app = make_app(database_url)
    with app.app_context():
        try:
            count = db.session.scalar(select(func.count(Purchase.id)))
            sums = dict(db.session.execute(
                select(LedgerEntry.membership_id, func.sum(LedgerEntry.amount)).group_by(LedgerEntry.membership_id)
            ).all())
            balanced = all(
                balance == sums.get(membership_id, 0)
                for membership_id, balance in db.session.execute(select(Membership.id, Membership.balance))
            )
            without_ledger = db.session.scalar(
                select(func.count(Purchase.id)).where(
                    Purchase.points_earned > 0,
                    ~select(LedgerEntry.id).where(LedgerEntry.purchase_id == Purchase.id).exists(),
                )
            )
            return count, balanced, without_ledger == 0
        finally:
            db.session.remove()
            db.engine.dispose()


__all__ = [
    "Cashier", "PostgresServer", "RedisServer", "Till", "ledger_holds", "seed_till", "site_env",
]
