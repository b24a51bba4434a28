"""Scale-out: two gunicorn processes on different ports share one PostgreSQL and one Redis, so a
sign-in, a sign-out and the login rate limit hold across both."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from limits import parse_many

from tests.conftest import (
    PASSWORD,
    PG_ADMIN_URL,
    REDIS_URL,
    _postgres_available,
    make_app,
    redis_available,
    require_service,
)
from tests.servers import PROJECT_ROOT, Browser, free_port, wait_until_up
from webapp.config import Config
from webapp.extensions import db
from webapp.services import accounts

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

@pytest.fixture
def scale_database():
    require_service(_postgres_available(), "PostgreSQL")
    require_service(redis_available(), "Redis")
    name = f"neighbourly_scale_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def servers(scale_database, tmp_path):
    """Two gunicorn processes (sync workers) on two ports against one database and one Redis."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    app = make_app(scale_database)
    with app.app_context():
        db.create_all()
        user = accounts.register_user(db.session, "shared@example.com", PASSWORD, "Shared Person")
        email = user.email
        db.session.remove()
        db.engine.dispose()

    env = {
        **os.environ,
        "NEIGHBOURLY_DATABASE_URL": scale_database,
        "NEIGHBOURLY_SECRET_KEY": f"k-{uuid.uuid4().hex}",
        "NEIGHBOURLY_REDIS_URL": REDIS_URL,
        "NEIGHBOURLY_TASKS_DB": str(tmp_path / "tasks.db"),
        "NEIGHBOURLY_ENV": "development",
    }
    ports = [free_port(), free_port()]
    processes = []
    try:
        for index, port in enumerate(ports):
            log = open(tmp_path / f"gunicorn-{index}.log", "wb")  # noqa: SIM115 - closed below
            processes.append((subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
                 "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", "webapp:create_app()"],
                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            ), log))
        for (process, _log), port in zip(processes, ports, strict=True):
            wait_until_up(process, port, tmp_path)
        yield ports, email
    finally:
        for process, log in processes:
            process.terminate()
        for process, log in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            log.close()


def test_two_servers_share_sessions_and_the_login_rate_limit(servers):
    (first, second), email = servers

    # A sign-in made on the first server is valid on the second (token from the second's page).
    browser = Browser()
    status, headers, _ = browser.post(first, "/auth/login", {"email": email, "password": PASSWORD},
                                      token_from=second)
    assert status == 303, status
    assert browser.get(first, "/wallet/")[0] == 200
    assert browser.get(second, "/wallet/")[0] == 200

    # A copy of the cookie works on both until the sign-out on the second server ends it on both.
    stolen = Browser()
    stolen.cookies = dict(browser.cookies)
    assert stolen.get(first, "/wallet/")[0] == 200
    status, _headers, _ = browser.post(second, "/auth/logout", {})
    assert status == 303, status
    for port in (first, second):
        status, headers, _ = stolen.get(port, "/wallet/")
        assert status == 302, (port, status)
        assert "/auth/login" in headers["Location"]
        assert browser.get(port, "/wallet/")[0] == 302

    # Failed sign-ins alternate between the servers; the limit trips at the configured count,
    # which only happens if both count in the one Redis.
    limit = min(item.amount for item in parse_many(Config.LOGIN_RATE_LIMIT))
    guesser = Browser()
    wrong = {"email": email, "password": "not the password"}
    statuses = [guesser.post((first, second)[i % 2], "/auth/login", wrong)[0] for i in range(limit)]
    assert statuses == [422] * limit
    assert guesser.post(first, "/auth/login", wrong)[0] == 429
    assert guesser.post(second, "/auth/login", wrong)[0] == 429
    # Even the right password now waits, on either server.
    assert Browser().post(second, "/auth/login", {"email": email, "password": PASSWORD})[0] == 429

    import redis

    keys = [key.decode() for key in redis.Redis.from_url(REDIS_URL).keys("*")]
    assert any("LIMIT" in key for key in keys), keys
