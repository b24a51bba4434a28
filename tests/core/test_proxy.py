"""Behind a trusted reverse proxy, rate limits count each client, not the proxy's address."""

import pytest


@pytest.fixture
def app_overrides():
    return {"TRUSTED_PROXIES": 1, "LOGIN_RATE_LIMIT": "3 per minute"}


def _fail_login(client, forwarded_for):
    return client.post_form(
        "/auth/login",
        {"email": "nobody@example.com", "password": "wrong password"},
        headers={"X-Forwarded-For": forwarded_for},
    )


def test_failed_logins_are_counted_per_forwarded_client(app, client):
    statuses = [_fail_login(client, "203.0.113.7").status_code for _ in range(4)]
    assert statuses == [422, 422, 422, 429]
    # Another client behind the same proxy is not locked out by the first one.
    assert _fail_login(client, "198.51.100.20").status_code == 422
