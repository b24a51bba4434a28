"""A site as a POS meets it: a shop with members, certificates from its neighbour and a till key,
served by gunicorn on loopback; and the curl examples of docs/pos-integration.md, read from the
guide itself (run by bash, or turned into plain HTTP requests by the POS simulator)."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy import select

from tests.conftest import PASSWORD, PG_ADMIN_URL, _postgres_available, make_app, require_service
from tests.servers import gunicorn

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "pos-integration.md"
PRICE = 450_000  # what the guide's examples charge


@dataclass
class Site:
    database_url: str
    secret: str
    card_codes: list[str] = field(default_factory=list)
    certificate_codes: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def seed(database_url: str, customers: int = 10, certificates: int = 5) -> Site:
    """The shop, its neighbour handing out the shop's certificates, members and a till key."""
    from plugins.cross_marketing import services as certificate_services
    from plugins.cross_marketing.models import Certificate
    from webapp.extensions import db
    from webapp.models import Membership
    from webapp.plugins import registry
    from webapp.services import accounts, api_keys, codes, memberships, merchants
    from webapp.services.purchases import PurchaseDraft, record_purchase

    app = make_app(database_url)
    with app.app_context():
        db.create_all()
        operator = accounts.register_user(db.session, "operator@example.com", PASSWORD, "Operator")
        network = merchants.create_network(db.session, "Abay Street", "KZT", operator, slug="abay")
        shops = []
        for name in ("Café Lipa", "Salon Aru"):
            owner = accounts.register_user(db.session, f"{uuid.uuid4().hex[:8]}@example.com", PASSWORD, "Owner")
            shop = merchants.apply_to_network(db.session, owner, network, name=name, category="cafe", cashback_bp=500)
            shop.status = "active"
            db.session.commit()
            merchants.set_plugin_enabled(db.session, registry(), shop, "cross_marketing", True, owner)
            shops.append((shop, owner))
        (cafe, _cafe_owner), (salon, _salon_owner) = shops
        offer = certificate_services.create_offer(
            db.session, cafe, {"face_value": "500", "validity_days": "30", "remainder_policy": "lost"}
        )
        partnership = certificate_services.invite(db.session, cafe, offer.id, salon.id)
        certificate_services.respond(db.session, salon, partnership.id, True, {})
        site = Site(database_url, secret="")
        for number in range(customers):
            user = accounts.register_user(db.session, f"customer{number}@example.com", PASSWORD, f"Customer {number}")
            memberships.join_merchant(db.session, user, cafe, consent_given=True, text_version="test")
            site.card_codes.append(user.card_code)
            if number < certificates:  # a sale at the salon hands out the café's certificate
                at_salon, _ = memberships.join_merchant(db.session, user, salon, consent_given=True, text_version="test")
                draft = PurchaseDraft(membership_id=at_salon.id, amount=PRICE, points_to_use=0,
                                      idempotency_key=uuid.uuid4().hex)
                record_purchase(db.session, salon, db.session.get(Membership, at_salon.id), draft)
        for certificate in db.session.scalars(select(Certificate).where(Certificate.issuer_id == cafe.id)):
            site.certificate_codes.append(codes.group(certificate_services.unseal(certificate.code_sealed)))
        site.secret = api_keys.create_key(
            db.session, cafe, name="POS", scope="till", created_by_id=None,
            hash_key=app.config["CODE_HASH_KEY"],
        ).secret
        db.session.remove()
        db.engine.dispose()
    return site


@contextlib.contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database for the served site: a SQLite file or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'site.db'}"
        return
    require_service(_postgres_available(), "PostgreSQL")
    name = f"neighbourly_pos_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def served(site: Site, tmp_path: Path, workers: int = 2) -> Iterator[Site]:
    env = {"NEIGHBOURLY_ENV": "test", "NEIGHBOURLY_DATABASE_URL": site.database_url}
    with gunicorn(env, tmp_path, workers=workers, name="pos-site") as port:
        site.port = port
        yield site


# --------------------------------------------------------------------------- the guide


def guide_commands() -> list[str]:
    """The guide's shell examples that call the API, in the guide's order."""
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return [block for block in blocks if "curl " in block]


def command_for(fragment: str) -> str:
    """The one guide example whose curl command contains ``fragment``."""
    [found] = [block for block in guide_commands() if fragment in block]
    return found


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def as_request(block: str, variables: dict[str, object]) -> Request:
    """The HTTP request a guide example's curl command sends, with the shell variables filled in
    (assignment lines are the reader's own values: the caller passes its own instead)."""
    lines = [line for line in block.splitlines() if not re.match(r"^[A-Z_]+=", line)]
    words = shlex.split(" ".join(line.rstrip("\\") for line in lines))
    fill = {name: str(value) for name, value in variables.items()}
    words = [string.Template(word).substitute(fill) for word in words]
    assert words[0] == "curl", words
    method, url, headers, body = "GET", "", {}, None
    items = iter(words[1:])
    for word in items:
        if word == "-X":
            method = next(items)
        elif word == "-H":
            name, _colon, value = next(items).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = next(items).encode()
            json.loads(body)  # the guide's bodies are JSON once filled in
            method = "POST" if method == "GET" else method
        elif word.startswith("-"):
            continue  # -sS, --fail-with-body: how curl reports, not what it sends
        else:
            url = word
    return Request(method, url, headers, body)
