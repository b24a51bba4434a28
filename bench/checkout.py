"""Checkout under gunicorn: the till's purchase POST against a bare insert endpoint, same database.

Both apps run under the same gunicorn settings (2 sync workers on 127.0.0.1, a random port each);
a thread pool sends a bounded loop of requests over fresh connections (sync workers close them).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from bench.seed import SeedInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
THREADS = 4
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
Request = tuple[str, str, bytes | None, dict[str, str]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A gunicorn process serving ``app_spec``; stopped with SIGTERM."""

    def __init__(self, app_spec: str, env: dict[str, str]) -> None:
        self.port = free_port()
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "--workers", str(WORKERS), "--worker-class", "sync",
             "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", app_spec],
            cwd=PROJECT_ROOT, env={**os.environ, **env},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn for {app_spec} exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn for {app_spec} did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def send(port: int, request: Request) -> tuple[int, dict[str, str], bytes, list[str]]:
    method, path, body, headers = request
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        cookies = response.headers.get_all("Set-Cookie") or []
        return response.status, dict(response.headers), data, cookies
    finally:
        connection.close()


class Browser:
    """Just enough of a browser for one signed-in cashier: a cookie jar and the CSRF token."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        headers = {"Cookie": self.header()}
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, _headers, data, set_cookies = send(self.port, (method, path, body, headers))
        for raw in set_cookies:
            cookie = SimpleCookie()
            cookie.load(raw)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        text = data.decode("utf-8", "replace")
        match = CSRF_META.search(text)
        if match:
            self.csrf = match.group(1)
        return status, text

    def sign_in(self, login_path: str, email: str, password: str, landing: str) -> None:
        self.request("GET", login_path)
        status, _ = self.request(
            "POST", login_path, {"email": email, "password": password, "csrf_token": self.csrf}
        )
        if status != 303:
            raise RuntimeError(f"signing in {email} answered {status}")
        status, _ = self.request("GET", landing)  # a fresh CSRF token for the new session
        if status != 200:
            raise RuntimeError(f"{landing} answered {status} after signing in")


@dataclass
class LoadResult:
    rate: float
    requests: int
    failures: int


def load(port: int, make_request: Callable[[int], Request], seconds: float, max_requests: int,
         ok: Callable[[int], bool]) -> LoadResult:
    """``THREADS`` threads send requests until ``seconds`` pass or ``max_requests`` are sent."""
    counter = iter(range(max_requests))
    lock = threading.Lock()
    done, failures = [0], [0]
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        while time.perf_counter() < deadline:
            with lock:
                number = next(counter, None)
            if number is None:
                return
            status, _headers, _body, _cookies = send(port, make_request(number))
            with lock:
                done[0] += 1
                if not ok(status):
                    failures[0] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return LoadResult(done[0] / elapsed, done[0], failures[0])


def floor_insert(number: int) -> Request:
    """One request to the floor app: one ORM insert + commit."""
    body = urlencode({"amount": "450000", "note": f"floor {number}"}).encode()
    return "POST", "/floor", body, {"Content-Type": "application/x-www-form-urlencoded"}


def against_floor(port: int, make_request: Callable[[int], Request], ok: int, floor_port: int,
                  rounds: int, seconds: float) -> tuple[list, list]:
    """Warm both servers, then alternate rounds of the floor and of ``make_request`` (a burst of
    load from elsewhere hits both sides); returns (runs, floor runs)."""
    load(port, make_request, 1.0, 50, lambda s: s == ok)
    load(floor_port, floor_insert, 1.0, 50, lambda s: s == 200)
    runs, floor_runs = [], []
    for _ in range(rounds):
        floor_runs.append(load(floor_port, floor_insert, seconds, 20_000, lambda s: s == 200))
        runs.append(load(port, make_request, seconds, 20_000, lambda s: s == ok))
    return runs, floor_runs


def purchase_endpoint(app) -> str:
    """The till's purchase route, found in the url_map (``cashier.purchase`` today)."""
    if "cashier.purchase" in app.view_functions:
        return "cashier.purchase"
    candidates = [
        rule.endpoint for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("cashier.") and "POST" in rule.methods
        and "purchase" in rule.rule and "refund" not in rule.rule
    ]
    if not candidates:
        raise RuntimeError("no purchase route in the cashier blueprint")
    return candidates[0]


def endpoint_paths(info: SeedInfo) -> dict[str, str]:
    """URLs from the app's url_map, so the bench follows the routes wherever they live."""
    from flask import url_for

    from webapp import create_app

    app = create_app({"DATABASE_URL": info.database_url, "SECRET_KEY": "bench-secret-key"})
    with app.test_request_context():
        return {
            "login": url_for("auth.login"),
            "till": url_for("cashier.till", merchant_slug=info.merchant_slug),
            "purchase": url_for(purchase_endpoint(app), merchant_slug=info.merchant_slug),
        }


def measure(info: SeedInfo, env: dict[str, str], rounds: int, seconds: float) -> dict:
    """Checkout and floor rates (median of interleaved rounds) and their ratio."""
    from bench.floor_app import prepare

    prepare(info.database_url)
    paths = endpoint_paths(info)
    app_env = {"NEIGHBOURLY_DATABASE_URL": info.database_url, "NEIGHBOURLY_SECRET_KEY": "bench-secret-key", **env}
    neighbourly = Server("webapp:create_app()", app_env)
    floor = Server("bench.floor_app:create_floor_app()", {"BENCH_DATABASE_URL": info.database_url, **env})
    try:
        cashier = Browser(neighbourly.port)
        cashier.sign_in(paths["login"], info.cashier_email, info.password, paths["till"])
        members = info.checkout_members
        checkout_headers = {
            "Cookie": cashier.header(), "X-CSRFToken": cashier.csrf, "HX-Request": "true",
            "Content-Type": "application/x-www-form-urlencoded",
        }

        def checkout(number: int) -> Request:
            form = {
                "membership_id": members[number % len(members)],
                "amount": "4500",
                "points": "100" if number % 4 == 0 else "",
                "idempotency_key": uuid.uuid4().hex,
            }
            return "POST", paths["purchase"], urlencode(form).encode(), checkout_headers

        status, _headers, body, _cookies = send(neighbourly.port, checkout(0))
        if status != 200:
            raise RuntimeError(f"the till answered {status}: {body[:300]!r}")
        checkout_runs, floor_runs = against_floor(neighbourly.port, checkout, 200, floor.port, rounds, seconds)
    finally:
        neighbourly.stop()
        floor.stop()
    checkout_rate = statistics.median(run.rate for run in checkout_runs)
    floor_rate = statistics.median(run.rate for run in floor_runs)
    return {
        "checkout_rate": checkout_rate,
        "floor_rate": floor_rate,
        "ratio": checkout_rate / floor_rate,
        "checkout_requests": sum(run.requests for run in checkout_runs),
        "checkout_failures": sum(run.failures for run in checkout_runs),
        "floor_failures": sum(run.failures for run in floor_runs),
    }
