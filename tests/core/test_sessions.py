"""Sessions and browser-facing security: revocable server-side sessions, login rate limit,
safe ``next`` redirects, cookie flags, CSP and the htmx configuration, long-lived CSRF tokens."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import urlsplit

import pytest
from flask import g
from itsdangerous import TimestampSigner
from limits import parse_many
from sqlalchemy import select

from tests.conftest import PASSWORD
from webapp.config import ProductionConfig
from webapp.extensions import db
from webapp.models import UserSession
from webapp.services import accounts

COOKIE = "neighbourly_session"


def session_cookie(client) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None, "no session cookie"
    return cookie.value


def client_with_cookie(app, value: str):
    """A second browser that holds a copy of someone's session cookie."""
    other = app.test_client()
    other.set_cookie(COOKIE, value)
    return other


def wallet_status(client) -> int:
    return client.get("/wallet/").status_code


def live_sessions(user_id: int) -> int:
    db.session.commit()  # see what the requests committed
    return len(accounts.active_sessions(db.session, user_id))


def assert_local_path(location: str) -> None:
    """A redirect target a browser resolves on this site: a path, never another host."""
    parts = urlsplit(location)
    if parts.scheme or parts.netloc:  # an absolute URL is fine only for this very host
        assert parts.scheme in ("http", "https") and parts.netloc == "localhost", location
        location = location[len(f"{parts.scheme}://{parts.netloc}"):] or "/"
    assert location.startswith("/"), location
    assert not location.startswith("//"), location
    assert "\\" not in location, location
    assert not any(ord(ch) < 33 for ch in location), location


# --------------------------------------------------------------------------- revocation


def test_login_creates_a_server_side_session_and_logout_revokes_it(app, client, make_user):
    user = make_user()
    assert wallet_status(client) == 302
    client.login(user)
    assert wallet_status(client) == 200
    assert live_sessions(user.id) == 1
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    assert row.revoked_at is None

    response = client.post_form("/auth/logout")
    assert response.status_code == 303
    assert live_sessions(user.id) == 0
    assert wallet_status(client) == 302


def test_cookie_captured_before_logout_is_dead_after_it(app, client, make_user):
    user = make_user()
    client.login(user)
    stolen = client_with_cookie(app, session_cookie(client))
    assert wallet_status(stolen) == 200, "the copied cookie works while the session lives"

    assert client.post_form("/auth/logout").status_code == 303
    response = stolen.get("/wallet/")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/auth/login"


def test_logout_ends_only_that_browser(app, make_user):
    user = make_user()
    phone, laptop = app.test_client(), app.test_client()
    phone.login(user)
    laptop.login(user)
    assert live_sessions(user.id) == 2
    assert phone.post_form("/auth/logout").status_code == 303
    assert wallet_status(phone) == 302
    assert wallet_status(laptop) == 200


def test_password_change_ends_every_session(app, make_user):
    user = make_user()
    phone, laptop = app.test_client(), app.test_client()
    phone.login(user)
    laptop.login(user)
    stolen = client_with_cookie(app, session_cookie(laptop))
    assert [wallet_status(c) for c in (phone, laptop, stolen)] == [200, 200, 200]

    db.session.commit()
    accounts.change_password(db.session, db.session.merge(user), PASSWORD, "a brand new passphrase")
    assert [wallet_status(c) for c in (phone, laptop, stolen)] == [302, 302, 302]
    assert live_sessions(user.id) == 0
    # The old password no longer signs in; the new one does.
    fresh = app.test_client()
    assert fresh.post_form("/auth/login", {"email": user.email, "password": PASSWORD}).status_code == 422
    fresh.login(user, password="a brand new passphrase")
    assert wallet_status(fresh) == 200


def test_password_change_on_the_account_page_ends_the_other_sessions(app, make_user):
    user = make_user()
    phone, laptop = app.test_client(), app.test_client()
    phone.login(user)
    laptop.login(user)
    old_laptop_cookie = client_with_cookie(app, session_cookie(laptop))
    response = laptop.post_form("/account/password", {
        "current_password": PASSWORD, "new_password": "a brand new passphrase",
        "repeat_password": "a brand new passphrase",
    })
    assert response.status_code == 303
    assert wallet_status(phone) == 302
    assert wallet_status(old_laptop_cookie) == 302, "the cookie from before the change still works"
    assert wallet_status(laptop) == 200  # the browser that changed it got a fresh session
    assert live_sessions(user.id) == 1


def test_password_reset_ends_every_session(app, make_user):
    user = make_user()
    browser = app.test_client()
    browser.login(user)
    assert wallet_status(browser) == 200
    db.session.commit()
    token = accounts.create_reset_token(db.session, db.session.merge(user))
    response = app.test_client().post_form(f"/auth/reset/{token}", {"password": "another long passphrase"})
    assert response.status_code == 303
    assert wallet_status(browser) == 302
    # A reset link works once.
    again = app.test_client().post_form(f"/auth/reset/{token}", {"password": "yet another passphrase"})
    assert again.status_code in (404, 422)
    retry = app.test_client().post_form(
        "/auth/login", {"email": user.email, "password": "yet another passphrase"}
    )
    assert retry.status_code == 422
    app.test_client().login(user, password="another long passphrase")


def test_a_session_id_with_a_forged_token_is_refused(app, client, make_user):
    user = make_user()
    client.login(user)
    with client.session_transaction() as flask_session:
        user_id, _, token = flask_session["_user_id"].partition(":")
        flask_session["_user_id"] = f"{user_id}:{token[:-2]}xx"
    assert wallet_status(client) == 302
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = user_id  # a bare user id, as plain Flask-Login would store
    assert wallet_status(client) == 302


# --------------------------------------------------------------------------- rate limit


def _login_limit(app) -> int:
    return min(item.amount for item in parse_many(app.config["LOGIN_RATE_LIMIT"]))


def test_failed_logins_are_rate_limited_and_successes_do_not_count(app, client, make_user):
    user = make_user()
    limit = _login_limit(app)
    wrong = {"email": user.email, "password": "not the password"}
    for _attempt in range(limit - 1):
        assert client.post_form("/auth/login", wrong).status_code == 422
    # Successful sign-ins in between are not counted against the limit.
    for _attempt in range(limit + 2):
        assert app.test_client().post_form(
            "/auth/login", {"email": user.email, "password": PASSWORD}
        ).status_code == 303
    assert client.post_form("/auth/login", wrong).status_code == 422  # the limit-th failure
    blocked = client.post_form("/auth/login", wrong)
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    # Once tripped, even the right password waits: guessing cannot continue.
    right = app.test_client().post_form("/auth/login", {"email": user.email, "password": PASSWORD})
    assert right.status_code == 429
    # Viewing the sign-in page is not limited.
    assert client.get("/auth/login").status_code == 200


def test_unknown_e_mails_count_towards_the_limit_too(app, client):
    limit = _login_limit(app)
    statuses = [
        client.post_form("/auth/login", {"email": f"nobody{i}@example.com", "password": "x" * 12}).status_code
        for i in range(limit + 1)
    ]
    assert statuses == [422] * limit + [429]


# --------------------------------------------------------------------------- next redirects

OPEN_REDIRECTS = [
    "//evil.com",
    "///evil.com",
    "https://evil.com",
    "http:evil.com",
    "https:/evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "\\/evil.com",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/%2F%2Fevil.com",
    "%2F%2Fevil.com",
    " //evil.com",
    "\t//evil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "//evil.com/%2F..",
    "evil.com",
    "@evil.com",
    "/@evil.com",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_after_login_stays_on_this_site(app, make_user, target):
    user = make_user()
    client = app.test_client()
    response = client.post_form(
        "/auth/login", {"email": user.email, "password": PASSWORD, "next": target}
    )
    assert response.status_code == 303
    assert_local_path(response.headers["Location"])
    # Also as a query string, and when already signed in (the sign-in page then redirects).
    response = client.get("/auth/login", query_string={"next": target})
    assert response.status_code in (302, 303)
    assert_local_path(response.headers["Location"])


@pytest.mark.parametrize("target", ["//evil.com", "/\\evil.com", "javascript:alert(1)", " //evil.com"])
def test_next_after_registration_and_language_change_stays_on_this_site(app, target):
    client = app.test_client()
    response = client.post_form(
        "/auth/register",
        {"email": "new.person@example.com", "password": PASSWORD, "name": "New Person", "next": target},
    )
    assert response.status_code == 303
    assert_local_path(response.headers["Location"])
    response = client.post_form("/account/locale", {"locale": "en", "next": target})
    assert response.status_code == 303
    assert_local_path(response.headers["Location"])


def test_a_local_next_is_followed(app, make_user):
    user = make_user()
    response = app.test_client().post_form(
        "/auth/login", {"email": user.email, "password": PASSWORD, "next": "/account/?tab=privacy"}
    )
    assert response.headers["Location"] == "/account/?tab=privacy"


# --------------------------------------------------------------------------- cookies, CSP, htmx


def _set_cookie_header(response) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{COOKIE}=")]
    assert headers, "the response did not set the session cookie"
    return headers[-1]


def test_session_cookie_is_httponly_and_samesite_lax(app, make_user):
    user = make_user()
    response = app.test_client().login(user)
    header = _set_cookie_header(response)
    attributes = {part.strip().split("=")[0].lower(): part for part in header.split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert "secure" not in attributes  # development and tests run over plain http


def test_production_config_marks_cookies_secure(app, make_user):
    assert ProductionConfig.SESSION_COOKIE_SECURE is True
    assert ProductionConfig.REMEMBER_COOKIE_SECURE is True
    for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
                "SESSION_COOKIE_SAMESITE"):
        app.config[key] = getattr(ProductionConfig, key)
    user = make_user()
    client = app.test_client()
    response = client.post_form(
        "/auth/login", {"email": user.email, "password": PASSWORD},
        base_url="https://localhost", headers={"Referer": "https://localhost/auth/login"},
    )
    assert response.status_code == 303
    header = _set_cookie_header(response).lower()
    assert "; secure" in header and "; httponly" in header and "samesite=lax" in header


def _assert_strict_csp(response) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in policy.split(";") if d.strip()}
    assert "script-src" in directives and "default-src" in directives, policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, policy
    assert "*" not in directives["script-src"].split()[1:], policy
    assert directives.get("object-src") == "object-src 'none'", policy
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", policy
    assert response.headers.get("X-Content-Type-Options") == "nosniff"


def test_pages_carry_a_strict_csp(app, client, make_user):
    for path in ("/", "/auth/login", "/auth/register", "/auth/reset", "/no-such-page"):
        _assert_strict_csp(client.get(path))
    client.login(make_user())
    for path in ("/wallet/", "/account/", "/business/"):
        response = client.get(path)
        assert response.status_code == 200, path
        _assert_strict_csp(response)
    _assert_strict_csp(client.post("/account/locale", data={"locale": "en"}))  # a CSRF refusal


def test_htmx_is_configured_for_the_csp(app, client):
    page = client.get("/auth/login").get_data(as_text=True)
    match = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", page)
    assert match, "no htmx-config meta tag"
    config = json.loads(html.unescape(match.group(1)))
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
    assert config["includeIndicatorStyles"] is False
    assert config["historyCacheSize"] == 0
    # 422 validation fragments and 429s are swapped into the page, not dropped.
    swapped = {rule["code"] for rule in config["responseHandling"] if rule.get("swap")}
    assert any(re.fullmatch(code, "422") for code in swapped)
    assert any(re.fullmatch(code, "429") for code in swapped)



def test_form_errors_keep_their_status_without_htmx_and_reach_htmx_as_a_200(client, make_user):
    """Chromium logs every 4xx answer to a script as a console error: htmx gets the form with its
    messages as a 200 and the status in a header; a browser without JavaScript still gets the 422."""
    user = make_user()
    plain = client.post_form("/auth/login", {"email": user.email, "password": "wrong password"})
    assert plain.status_code == 422 and "Neighbourly-Status" not in plain.headers
    htmx = client.post_form("/auth/login", {"email": user.email, "password": "wrong password"}, htmx=True)
    assert htmx.status_code == 200
    assert htmx.headers["Neighbourly-Status"] == "422"
    assert "HX-Request" in htmx.headers["Vary"]
    assert "The e-mail or password is not right." in htmx.get_data(as_text=True)
    # Not found stays an error for htmx too: only answers that carry a form back are softened.
    missing = client.get("/no-such-page", headers={"HX-Request": "true"})
    assert missing.status_code == 404 and "Neighbourly-Status" not in missing.headers

# --------------------------------------------------------------------------- CSRF lifetime


def _page_token(client, path: str = "/auth/reset") -> str:
    # Test requests share the test's app context, and Flask-WTF caches the token in ``g``.
    g.pop("csrf_token", None)
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def test_csrf_tokens_live_as_long_as_the_session(app, client, make_user, monkeypatch):
    assert app.config["WTF_CSRF_TIME_LIMIT"] is None
    client.login(make_user())
    # A till page opened ten hours ago: its token was signed then.
    real_timestamp = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real_timestamp(self) - 36_000)
    old_token = _page_token(client)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real_timestamp)

    # Other pages and posts happen in between.
    for path in ("/wallet/", "/account/", "/auth/reset"):
        client.get(path)
    assert client.post_form("/account/locale", {"locale": "ru", "next": "/"}).status_code == 303

    form = {"locale": "en", "next": "/wallet/", "csrf_token": old_token}
    assert client.post("/account/locale", data=form).status_code == 303
    htmx = client.post(
        "/account/locale", data={"locale": "en"},
        headers={"X-CSRFToken": old_token, "HX-Request": "true"},
    )
    assert htmx.status_code == 303

    # The same token with Flask-WTF's default one-hour limit would have been refused.
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    assert client.post("/account/locale", data=form).status_code == 400


def test_csrf_token_is_bound_to_the_session(app, make_user):
    first, second = app.test_client(), app.test_client()
    first.login(make_user())
    second.login(make_user())
    token = _page_token(first)
    response = second.post("/account/locale", data={"locale": "en", "csrf_token": token})
    assert response.status_code == 400
    assert second.post("/account/locale", data={"locale": "en"}).status_code == 400
