"""Browser journeys: the app served on loopback, driven through Playwright in Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import IN_CI, make_app
from webapp.extensions import db

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# How Chromium logs a 422 answer to a plain form post (JavaScript off); htmx requests get their
# form errors as a 200 with the status in ``Neighbourly-Status``, so they log nothing.
EXPECTED_422 = "Failed to load resource: the server responded with a status of 422"


def chromium_path() -> str | None:
    for candidate in (os.environ.get("NEIGHBOURLY_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        if IN_CI:
            pytest.fail("Debian's chromium is required under CI (make test installs it)")
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class LiveServer:
    def __init__(self, app) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_app(tmp_path):
    """A fresh app on a SQLite file, served by a real HTTP server thread."""
    app = make_app(
        f"sqlite:///{tmp_path / 'browser.db'}",
        UPLOAD_FOLDER=str(tmp_path / "uploads"),
        PROPAGATE_UNEXPECTED=False,
    )
    with app.app_context():
        db.create_all()
    server = LiveServer(app)
    app.config["PUBLIC_URL"] = server.url
    server.start()
    app.live_url = server.url
    yield app
    server.stop()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def new_page(browser):
    """Open pages in fresh contexts (one per person); console errors fail the test."""
    contexts = []
    errors: list[str] = []

    def open_page(viewport=None, allow_422=False, expected_errors=(), **context_options):
        """``allow_422``: the page submits invalid forms on purpose without JavaScript, so Chromium's
        resource-status message for a 422 answer is expected there; every other console error
        still fails."""
        context = browser.new_context(viewport=viewport or {"width": 390, "height": 844}, **context_options)
        contexts.append(context)
        page = context.new_page()

        def on_console(msg):
            if msg.type != "error":
                return
            if allow_422 and msg.text.startswith(EXPECTED_422):
                return
            if any(expected in msg.text for expected in expected_errors):
                return  # an error the test causes on purpose (a request it aborts)
            errors.append(f"{msg.type}: {msg.text} @ {page.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.set_default_timeout(10_000)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert errors == [], f"browser console errors: {errors}"
