"""Outbound HTTP to URLs that owners type in (webhooks), guarded against server-side request forgery.

A URL is checked when it is registered and again before every request: the host name is resolved,
and every address it resolves to must be public (not private, loopback, link-local, multicast,
reserved or unspecified). The request then connects to the address that was checked, not to the
name, so a DNS answer that changes between the check and the connection (DNS rebinding) cannot
point it elsewhere; TLS still verifies the certificate for the name. Redirects are never followed
and timeouts are short. ``allow_loopback`` (development and tests) also admits http and loopback.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from flask_babel import gettext as _

MAX_URL_LENGTH = 500
EXCERPT_BYTES = 500


class UnsafeUrl(ValueError):
    """The URL may not be called; ``str(error)`` is a translated message for the owner."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent on the request line
    address: str  # the checked IP address the connection goes to

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def address_allowed(address: str, allow_loopback: bool = False) -> bool:
    """Whether a connection to this IP address is allowed (public unicast only)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4 written as IPv6 (::ffff:10.0.0.1, 6to4, Teredo) is judged as the IPv4 it carries.
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            ip = inner
    if allow_loopback and ip.is_loopback:
        return True
    return ip.is_global and not ip.is_multicast


def check_url(url: str, allow_loopback: bool = False) -> Target:
    """Parse and resolve a URL; raise ``UnsafeUrl`` unless every address it resolves to is allowed."""
    url = (url or "").strip()
    if not url:
        raise UnsafeUrl(_("Enter the address that should receive the events."))
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(_("The address is too long (at most 500 characters)."))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl(_("This is not a valid web address.")) from None
    schemes = ("https", "http") if allow_loopback else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeUrl(_("The address must start with https://."))
    if not parts.hostname:
        raise UnsafeUrl(_("This is not a valid web address."))
    if parts.username or parts.password:
        raise UnsafeUrl(_("The address must not contain a user name or password."))
    if parts.fragment:
        raise UnsafeUrl(_("The address must not contain a # fragment."))
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(_("The host %(host)s could not be found.", host=host)) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeUrl(_("The host %(host)s could not be found.", host=host))
    if not all(address_allowed(address, allow_loopback) for address in addresses):
        raise UnsafeUrl(_(
            "The address %(host)s leads to a private or local network; only public addresses "
            "can receive events.", host=host,
        ))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=addresses[0])


@dataclass(frozen=True)
class Answer:
    status: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(
    url: str, body: bytes, headers: dict[str, str], *, allow_loopback: bool, connect_timeout: float,
    read_timeout: float,
) -> Answer:
    """POST ``body`` to ``url`` after checking it; never raises, never follows a redirect."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = check_url(url, allow_loopback)
    except UnsafeUrl as refused:
        return Answer(None, elapsed(), None, str(refused))
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
    common = {"timeout": timeout, "retries": False, "maxsize": 1, "block": False}
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            target.address, target.port, server_hostname=target.host, assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED", **common,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, **common)
    try:
        response = pool.urlopen(
            "POST", target.path, body=body, headers={**headers, "Host": target.host_header},
            redirect=False, retries=False, preload_content=False, assert_same_host=False,
        )
        try:
            excerpt = response.read(EXCERPT_BYTES, decode_content=True)
        finally:
            response.release_conn()
        text = excerpt.decode("utf-8", "replace") if excerpt else None
        return Answer(response.status, elapsed(), text, None)
    except urllib3.exceptions.HTTPError as error:
        return Answer(None, elapsed(), None, _describe(error))
    finally:
        pool.close()


def _describe(error: Exception) -> str:
    errors = urllib3.exceptions
    if isinstance(error, errors.NewConnectionError):  # before timeouts: it subclasses one
        return _("The connection was refused.")
    if isinstance(error, errors.TimeoutError):
        return _("No answer in time.")
    if isinstance(error, errors.SSLError):
        return _("The secure connection failed: %(reason)s", reason=str(error)[:200])
    return f"{error.__class__.__name__}: {str(error)[:200]}"
