"""The SSRF guard: in production only https URLs resolving to public addresses are registered, the
check is made again at every delivery, and the connection goes to the address that was checked."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from tests.webhooks.conftest import register
from webapp import safe_http
from webapp.extensions import db
from webapp.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

PUBLIC = "93.184.215.14"


@pytest.fixture
def shop(make_merchant):
    return make_merchant(name="Bakery")


@pytest.fixture
def production(app):
    app.config["WEBHOOKS_ALLOW_LOOPBACK"] = False
    yield app
    app.config["WEBHOOKS_ALLOW_LOOPBACK"] = True


def fake_dns(monkeypatch, answers: dict[str, str]) -> None:
    """Resolve the given names to the given addresses; everything else as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("address", [
    "10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "ff02::1", "::",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:a00:1::",
])
def test_private_loopback_link_local_multicast_and_reserved_addresses_are_refused(address):
    assert not safe_http.address_allowed(address)


@pytest.mark.parametrize("address", [PUBLIC, "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert safe_http.address_allowed(address)


def test_loopback_is_allowed_only_when_configured():
    assert safe_http.address_allowed("127.0.0.1", allow_loopback=True)
    assert safe_http.address_allowed("::1", allow_loopback=True)
    assert not safe_http.address_allowed("10.0.0.1", allow_loopback=True)


@pytest.mark.parametrize(("url", "message"), [
    ("http://example.com/hook", "must start with https://"),
    ("https://10.0.0.5/hook", "private or local network"),
    ("https://169.254.169.254/latest/meta-data", "private or local network"),
    ("https://127.0.0.1:8443/hook", "private or local network"),
    ("https://[::1]/hook", "private or local network"),
    ("https://[::ffff:192.168.1.1]/hook", "private or local network"),
    ("https://localhost/hook", "private or local network"),  # a name that resolves to loopback
    ("https://rebind.example.test/hook", "private or local network"),
    ("https://no-such-host.invalid/hook", "could not be found"),
])
def test_production_refuses_urls_that_are_not_public_https(
    client, shop, production, monkeypatch, url, message
):
    fake_dns(monkeypatch, {"rebind.example.test": "192.168.0.7"})
    client.login(shop.owner)
    page = client.post_form(f"/business/{shop.slug}/integrations/webhooks",
                            {"url": url, "events": ["purchase.recorded"]})
    assert page.status_code == 422
    assert message in page.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_production_accepts_a_public_https_url(client, shop, production, monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.test": PUBLIC})
    client.login(shop.owner)
    endpoint_id, secret = register(client, shop, "https://hooks.example.test/neighbourly",
                                   ["purchase.recorded"])
    assert db.session.get(WebhookEndpoint, endpoint_id).url == "https://hooks.example.test/neighbourly"


def test_an_address_that_turns_private_after_registration_is_refused_at_delivery(
    client, shop, production, monkeypatch, make_member, receiver
):
    """DNS rebinding: public when registered, loopback (the receiver) when the event is sent."""
    fake_dns(monkeypatch, {"hooks.example.test": PUBLIC})
    client.login(shop.owner)
    register(client, shop, f"https://hooks.example.test:{receiver.url.split(':')[2]}",
             ["membership.created"])
    fake_dns(monkeypatch, {"hooks.example.test": "127.0.0.1"})
    make_member(shop)
    assert receiver.requests == []
    [attempt] = db.session.scalars(select(WebhookAttempt)).all()
    assert attempt.status_code is None and "private or local network" in attempt.error
    assert db.session.scalar(select(WebhookDelivery.status)) == "pending"  # retried later


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(
    client, shop, monkeypatch, make_member, receiver
):
    port = int(receiver.url.split(":")[2].split("/")[0])
    fake_dns(monkeypatch, {"receiver.example.test": "127.0.0.1"})
    client.login(shop.owner)
    _id, secret = register(client, shop, f"http://receiver.example.test:{port}/in?x=1",
                           ["membership.created"])
    receiver.secrets.append(secret)
    make_member(shop)
    [request] = receiver.requests
    assert request.headers["host"] == f"receiver.example.test:{port}"
    assert request.path == "/in?x=1" and request.verified_with == [secret]


def test_redirects_are_not_followed(client, shop, make_member, receiver):
    receiver.default_status = 307
    client.login(shop.owner)
    register(client, shop, receiver.url, ["membership.created"])
    make_member(shop)
    assert len(receiver.requests) == 1
    [attempt] = db.session.scalars(select(WebhookAttempt)).all()
    assert attempt.status_code == 307
    assert db.session.scalar(select(WebhookDelivery.status)) == "pending"


def test_a_receiver_that_does_not_answer_times_out_quickly(client, shop, make_member, app):
    app.config["WEBHOOKS_READ_TIMEOUT_S"] = 0.5
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts connections, never answers
        client.login(shop.owner)
        register(client, shop, f"http://127.0.0.1:{silent.getsockname()[1]}/hook", ["membership.created"])
        make_member(shop)
    [attempt] = db.session.scalars(select(WebhookAttempt)).all()
    assert attempt.status_code is None and attempt.error == "No answer in time."
    assert attempt.latency_ms < 3000


def test_a_closed_port_is_logged_as_refused(client, shop, make_member):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        client.login(shop.owner)
        register(client, shop, f"http://127.0.0.1:{port}/hook", ["membership.created"])
        make_member(shop)
    [attempt] = db.session.scalars(select(WebhookAttempt)).all()
    assert attempt.status_code is None and attempt.error == "The connection was refused."


def test_https_checks_the_receivers_certificate(tmp_path):
    """A receiver with a certificate no authority signed is refused (TLS verification is on)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        answer = safe_http.post(
            f"https://127.0.0.1:{server.server_address[1]}/hook", b"{}", {}, allow_loopback=True,
            connect_timeout=2, read_timeout=2,
        )
    finally:
        thread.join(5)
        server.server_close()
    assert answer.status is None and seen == []
    assert answer.error.startswith("The secure connection failed") and "CERTIFICATE_VERIFY_FAILED" in answer.error
