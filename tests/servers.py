"""Real servers for tests that run the site as an operator would: free ports, a cookie-keeping HTTP
client, gunicorn processes started and stopped around a test."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout whose code gunicorn serves
START_TIMEOUT = 60  # seconds for a gunicorn to answer; polled, not slept through


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """A tiny cookie-keeping HTTP client (cookies are per host, not per port, as in browsers)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request(self, port: int, method: str, path: str, form: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Host": f"127.0.0.1:{port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel["expires"] and "1970" in morsel["expires"] or morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response.status, response.headers, text

    def get(self, port: int, path: str):
        return self.request(port, "GET", path)

    def csrf_token(self, port: int) -> str:
        status, _headers, page = self.get(port, "/auth/reset")
        assert status == 200, status
        match = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def post(self, port: int, path: str, form: dict, token_from: int | None = None):
        token = self.csrf_token(port if token_from is None else token_from)
        return self.request(port, "POST", path, {**form, "csrf_token": token})


def wait_until_up(process: subprocess.Popen, port: int, tmp_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
            pytest.fail(f"gunicorn on port {port} exited with {process.returncode}:\n{logs[-3000:]}")
        try:
            status, _headers, _body = Browser().get(port, "/auth/login")
        except OSError:
            time.sleep(0.2)  # bounded polling while the server starts
            continue
        assert status == 200, status
        return
    pytest.fail(f"gunicorn on port {port} did not answer within {START_TIMEOUT} s")


@contextlib.contextmanager
def gunicorn(env: dict[str, str], logs: Path, workers: int = 1, name: str = "gunicorn",
             extra_args: tuple[str, ...] = ()) -> Iterator[int]:
    """A gunicorn serving the site on a free loopback port (sync workers); yields the port."""
    port = free_port()
    log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync",
         "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", *extra_args, "webapp:create_app()"],
        cwd=PROJECT_ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(process, port, logs)
        yield port
    finally:
        stop_process(process)
        log.close()


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
