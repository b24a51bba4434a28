"""Security over the whole ``url_map``: CSRF on every unsafe route, a tenant-isolation matrix over
every id-bearing route, bad input never crashing a route, and XSS payloads in user text fields.

Routes are found from ``app.url_map`` (core and plugins), so routes added later are covered too.
URL variables are filled from real objects by name (see ``World.values``); an unknown name gets 1
(int) or "x" and the route is still checked for CSRF and crashes, just not for isolation.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from flask import g
from sqlalchemy import select
from werkzeug.routing import IntegerConverter, Rule

from tests.conftest import PASSWORD
from tests.kit import enable_every_plugin
from webapp.extensions import db
from webapp.models import MerchantPhoto, StaffRole, UserSession, WebhookDelivery, WebhookEndpoint
from webapp.plugins import registry
from webapp.services import accounts, merchants, price_items, staff, webhooks
from webapp.services.ledger import Posting, post
from webapp.services.purchases import PurchaseDraft, record_purchase

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
XSS_PAYLOADS = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>')
CSRF_MESSAGE = "The form could not be verified"
# Plausible values for fields that unsafe routes commonly read, so a view that validates its form
# before looking the object up cannot hide a missing tenant check behind a 422.
FORM = {
    "reason": "Checked by the test", "amount": "100", "points": "0", "points_to_use": "0",
    "email": "someone@example.com", "name": "Test Name", "title": "Title", "body": "Body",
    "offset": "1", "direction": "down", "enabled": "1", "confirm": "yes", "locale": "en",
}


# --------------------------------------------------------------------------- the world


@dataclass
class Side:
    """One tenant's objects: a merchant with its owner, cashier, customer, purchase and so on."""

    network: object
    merchant: object
    owner: object
    cashier: object
    customer: object
    membership: object
    purchase: object
    photo: object
    cashier_role: object
    invitation: object
    invitation_token: str
    user_session_id: int
    plugin_objects: dict = field(default_factory=dict)
    webhook_endpoint_id: int = 0
    webhook_delivery_id: int = 0

    def values(self) -> dict[str, object]:
        """URL variable values by name, all belonging to this side."""
        values = {
            "merchant_slug": self.merchant.slug,
            "slug": self.merchant.slug,
            "network_slug": self.network.slug,
            "merchant_id": self.merchant.id,
            "membership_id": self.membership.id,
            "member_id": self.membership.id,
            "customer_id": self.membership.id,
            "purchase_id": self.purchase.id,
            "photo_id": self.photo.id,
            "role_id": self.cashier_role.id,
            "staff_id": self.cashier_role.id,
            "invitation_id": self.invitation.id,
            "session_id": self.user_session_id,
            "user_id": self.customer.id,
            "token": self.invitation_token,
            "code": self.merchant.join_code,
            "join_code": self.merchant.join_code,
            "filename": self.photo.filename,
            "name": "htmx.min.js",
            "plugin_name": first_plugin_name(),
            "plugin": first_plugin_name(),
            "endpoint_id": self.webhook_endpoint_id,
            "delivery_id": self.webhook_delivery_id,
        }
        values.update(self.plugin_objects)
        return values


# Names whose values are objects owned by one tenant or one customer.
TENANT_OBJECTS = {
    "membership_id", "member_id", "customer_id", "purchase_id", "photo_id", "role_id", "staff_id",
    "invitation_id", "session_id", "user_id", "post_id", "endpoint_id", "delivery_id",
}


def first_plugin_name() -> str:
    names = sorted(registry().metas)
    return names[0] if names else "none"


def make_plugin_objects(merchant, owner) -> dict[str, int]:
    """Objects of built-in plugins whose ids appear in their URLs."""
    objects: dict[str, int] = {}
    if "news" in registry().metas:
        from plugins.news.services import create_post

        objects["post_id"] = create_post(db.session, merchant, owner, "Fresh bread", "Every morning").id
    return objects


def build_side(make_user, make_network, make_merchant, make_member, network=None, text: str = "") -> Side:
    """A complete tenant. ``text`` (e.g. an XSS payload) goes into every free-text field."""
    suffix = text or ""
    network = network or make_network(name=f"Street {suffix}".strip() or None)
    owner = make_user(name=f"Owner {suffix}".strip())
    cashier = make_user(name=f"Cashier {suffix}".strip())
    merchant = make_merchant(owner=owner, in_network=network, cashiers=[cashier],
                             name=f"Shop {suffix} {secrets.token_hex(3)}".strip())
    if text:
        merchant.description = f"About us: {text}"
        merchant.address = f"1 {text} street"
        merchant.opening_hours = f"Mon-Fri {text}"
        price_items.save_items(db.session, merchant, [price_items.ItemRow(None, f"Coffee {text}", 50000, text[:60])])
        network.description = f"Our street {text}"
        db.session.commit()
    assert merchant.owner == owner
    enable_every_plugin(merchant)  # as the shop's owner, requirements first
    # A webhook endpoint (a closed loopback port: attempts fail fast) and the sale's delivery to it.
    endpoint = webhooks.create_endpoint(db.session, merchant, url="http://127.0.0.1:9/hook",
                                        events=["purchase.recorded"], created_by_id=owner.id).endpoint
    customer = make_user(name=f"Customer {suffix}".strip())
    membership = make_member(merchant, user=customer, points=0)
    post(db.session, [Posting(membership.id, merchant.id, "adjust", 500, f"Welcome {text}")])
    db.session.commit()
    purchase = record_purchase(
        db.session, merchant, membership,
        PurchaseDraft(membership_id=membership.id, amount=10000, points_to_use=100,
                      idempotency_key=secrets.token_hex(8), note=f"Table 3 {text}",
                      cashier_id=cashier.id),
    ).purchase
    photo = MerchantPhoto(merchant_id=merchant.id, filename=f"{secrets.token_hex(16)}.jpg",
                          width=10, height=10, alt_text=f"Our shop {text}")
    db.session.add(photo)
    db.session.commit()
    cashier_role = db.session.query(StaffRole).filter_by(
        merchant_id=merchant.id, user_id=cashier.id).one()
    invited = staff.invite_cashier(db.session, merchant, owner, f"new.{secrets.token_hex(4)}@example.com")
    session_id = accounts.start_session(db.session, customer, "test")
    user_session = db.session.query(UserSession).filter_by(user_id=customer.id).one()
    assert session_id
    plugin_objects = make_plugin_objects(merchant, owner)
    delivery_id = db.session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id))
    return Side(
        network=network, merchant=merchant, owner=owner, cashier=cashier, customer=customer,
        membership=membership, purchase=purchase, photo=photo, cashier_role=cashier_role,
        invitation=invited.invitation, invitation_token=invited.token,
        user_session_id=user_session.id, plugin_objects=plugin_objects,
        webhook_endpoint_id=endpoint.id, webhook_delivery_id=delivery_id,
    )


@pytest.fixture
def world(app, make_user, make_network, make_merchant, make_member):
    """Two tenants A and B in one network, and tenant C in another network."""
    network = make_network()
    sides = {
        "A": build_side(make_user, make_network, make_merchant, make_member, network=network),
        "B": build_side(make_user, make_network, make_merchant, make_member, network=network),
        "C": build_side(make_user, make_network, make_merchant, make_member),
    }
    snapshot = {name: side.values() for name, side in sides.items()}
    db.session.commit()
    return sides, snapshot


# --------------------------------------------------------------------------- helpers


def rules(app, methods: set[str]) -> list[Rule]:
    found = [r for r in app.url_map.iter_rules() if r.methods & methods and r.endpoint != "static"]
    assert found, f"no routes with {methods}"
    return sorted(found, key=lambda r: (r.rule, r.endpoint))


def fill(rule: Rule, values: dict[str, object]) -> tuple[str, bool]:
    """The URL of ``rule`` with variables from ``values``; also whether every variable was known."""
    filled, known = {}, True
    for name in rule.arguments:
        if name in values:
            filled[name] = values[name]
        else:
            known = False
            filled[name] = 1 if isinstance(rule._converters.get(name), IntegerConverter) else "x"
    return rule.build(filled, append_unknown=False)[1], known


def sign_in(app, user):
    client = app.test_client()
    if user is not None:
        client.login(user)
    return client


def token_for(client) -> str:
    g.pop("csrf_token", None)  # requests share the test's app context; Flask-WTF caches in g
    return client.csrf_token()


def request(client, method: str, url: str, csrf: bool, htmx: bool = False, data=None):
    headers = {"HX-Request": "true"} if htmx else {}
    data = dict(FORM if data is None and method != "GET" else data or {})
    if csrf:
        token = token_for(client)
        data["csrf_token"] = token
        headers["X-CSRFToken"] = token
    try:
        return client.open(url, method=method, data=data, headers=headers)
    except Exception as error:  # testing propagates unexpected errors: name the route
        pytest.fail(f"{method} {url} raised {error!r}")


# --------------------------------------------------------------------------- CSRF


# Routes that must work without a session's CSRF token, and why. Nothing else may be exempt.
CSRF_EXEMPT_BY_DESIGN = {
    # RFC 8058 one-click unsubscribe: mail clients POST without cookies; the signed token in the
    # URL is the only credential and the only effect is withdrawing marketing consent.
    "letters.unsubscribe_confirm": "/letters/unsubscribe/",
}


def test_csrf_exemptions_are_exactly_the_documented_ones(app):
    from webapp.extensions import csrf

    exempt_endpoints = {
        endpoint for endpoint, view in app.view_functions.items()
        if f"{view.__module__}.{view.__name__}" in csrf._exempt_views
    }
    assert exempt_endpoints == set(CSRF_EXEMPT_BY_DESIGN) & set(app.view_functions)


def test_csrf_exempt_routes_act_only_on_a_valid_signed_token(app, world):
    client = app.test_client()
    for endpoint, prefix in CSRF_EXEMPT_BY_DESIGN.items():
        if endpoint not in app.view_functions:
            continue
        assert client.post(prefix + "forged-token").status_code == 404


def test_every_unsafe_route_requires_a_csrf_token(app, world):
    sides, values = world
    owner = sides["A"].owner
    signed_in, anonymous = sign_in(app, owner), app.test_client()
    checked = []
    for rule in rules(app, UNSAFE):
        if rule.endpoint in CSRF_EXEMPT_BY_DESIGN:
            continue
        url, _known = fill(rule, values["A"])
        if rule.rule.startswith("/api/"):
            # The API takes no CSRF token because the site's cookies are never its credentials:
            # a signed-in browser without an API key is refused.
            for method in sorted(rule.methods & UNSAFE):
                response = request(signed_in, method, url, csrf=False, htmx=False, data={})
                assert response.status_code == 401, (method, rule.rule, response.status_code)
                assert response.mimetype == "application/problem+json"
                checked.append(rule.endpoint)
            continue
        for method in sorted(rule.methods & UNSAFE):
            for who, client in (("owner", signed_in), ("anonymous", anonymous)):
                for htmx in (False, True):
                    response = request(client, method, url, csrf=False, htmx=htmx,
                                       data={"amount": "100", "email": owner.email})
                    assert response.status_code == 400, (method, rule.rule, who, response.status_code)
                    assert CSRF_MESSAGE in response.get_data(as_text=True), (method, rule.rule, who)
            checked.append(rule.endpoint)
    # The sweep saw the core's known unsafe routes (a guard against an empty url_map walk).
    assert {"auth.logout", "account.set_locale"} <= set(checked)
    # Nothing happened: the owner is still signed in and A's purchase is not refunded.
    assert signed_in.get("/wallet/").status_code == 200
    db.session.commit()
    db.session.refresh(sides["A"].purchase)
    assert sides["A"].purchase.refunded_at is None


def test_a_token_from_another_session_or_a_forged_one_is_refused(app, world):
    sides, values = world
    victim, attacker = sign_in(app, sides["A"].owner), sign_in(app, sides["B"].owner)
    attacker_token = token_for(attacker)
    refund = f"/business/{values['A']['merchant_slug']}/purchases/{values['A']['purchase_id']}/refund"
    for token in (attacker_token, attacker_token[:-3] + "abc", "", "null"):
        response = victim.post(refund, data={"csrf_token": token})
        assert response.status_code == 400, token
    db.session.commit()
    db.session.refresh(sides["A"].purchase)
    assert sides["A"].purchase.refunded_at is None


def test_unsafe_routes_answer_an_empty_form_without_crashing(app, world):
    """With a valid token but no fields, every unsafe route answers a clear 2xx-4xx, never 500."""
    sides, values = world
    ordered = sorted(rules(app, UNSAFE), key=lambda r: ("erase" in r.rule or "logout" in r.rule, r.rule))
    for rule in ordered:
        url, _known = fill(rule, values["A"])
        for method in sorted(rule.methods & UNSAFE):
            for htmx in (False, True):
                client = sign_in(app, sides["A"].owner)
                response = request(client, method, url, csrf=True, htmx=htmx, data={})
                assert response.status_code < 500, (method, rule.rule, response.status_code)
                assert CSRF_MESSAGE not in response.get_data(as_text=True), (method, rule.rule)


# --------------------------------------------------------------------------- tenant isolation


def _staff_rules(app, methods):
    # Pages under /m/<slug> are a merchant's public pages (its e-card, a plugin's deals): open to all.
    return [r for r in rules(app, methods) if "merchant_slug" in r.arguments and not r.rule.startswith("/m/")]


def test_other_tenants_objects_answer_404_to_staff(app, world):
    """Signed in as B's owner or cashier: A's merchant and A's objects are simply not there."""
    sides, values = world
    cross_values = {**values["B"], **{k: v for k, v in values["A"].items() if k in TENANT_OBJECTS}}
    checked = 0
    for who in ("owner", "cashier"):
        client = sign_in(app, getattr(sides["B"], who))
        for rule in _staff_rules(app, {"GET", "POST"}):
            for method in sorted(rule.methods & {"GET", "POST"}):
                csrf = method == "POST"
                # 1. A's merchant by its slug (with A's objects).
                url, _ = fill(rule, values["A"])
                response = request(client, method, url, csrf=csrf)
                assert response.status_code == 404, (who, method, url, response.status_code)
                # 2. B's own merchant slug with A's objects in the URL.
                if set(rule.arguments) & TENANT_OBJECTS:
                    url, _ = fill(rule, cross_values)
                    response = request(client, method, url, csrf=csrf)
                    assert response.status_code == 404, (who, method, url, response.status_code)
                    checked += 1
    assert checked, "no id-bearing merchant routes were found"
    # Nothing of A's was touched by B's attempts.
    db.session.commit()
    for obj in (sides["A"].purchase, sides["A"].photo, sides["A"].cashier_role, sides["A"].invitation):
        db.session.refresh(obj)
    assert sides["A"].purchase.refunded_at is None
    assert sides["A"].invitation.revoked_at is None
    endpoint = db.session.get(WebhookEndpoint, sides["A"].webhook_endpoint_id)
    assert endpoint is not None and endpoint.enabled and endpoint.previous_secret_sealed is None


def test_own_objects_are_reachable_so_the_404s_above_mean_something(app, world):
    sides, values = world
    client = sign_in(app, sides["B"].owner)
    reached = []
    for rule in _staff_rules(app, {"GET"}):
        url, known = fill(rule, values["B"])
        response = request(client, "GET", url, csrf=False)
        assert response.status_code < 500, (url, response.status_code)
        # Id-bearing pages with B's own ids must be there (slug-only pages may want a query).
        if known and set(rule.arguments) & TENANT_OBJECTS:
            assert response.status_code != 404, (url, response.status_code)
        if response.status_code == 200:
            reached.append(rule.endpoint)
    assert {"business.dashboard", "business.customer", "cashier.purchase_detail"} <= set(reached), reached


def test_customers_and_strangers_never_see_staff_pages(app, world):
    sides, values = world
    for user in (sides["A"].customer, sides["B"].owner, sides["C"].cashier):
        client = sign_in(app, user)
        for rule in _staff_rules(app, {"GET"}):
            url, _ = fill(rule, values["A"])
            response = request(client, "GET", url, csrf=False)
            assert response.status_code == 404, (user.name, url, response.status_code)
    anonymous = app.test_client()
    for rule in _staff_rules(app, {"GET"}):
        url, _ = fill(rule, values["A"])
        response = request(anonymous, "GET", url, csrf=False)
        assert response.status_code in (302, 404), (url, response.status_code)
        if response.status_code == 302:
            assert "/auth/login" in response.headers["Location"]


def test_other_networks_answer_404_to_an_operator(app, world):
    sides, values = world
    operator_c = sides["C"].network.operator
    client = sign_in(app, operator_c)
    operator_rules = [r for r in rules(app, {"GET", "POST"}) if "network_slug" in r.arguments
                      and r.rule.startswith("/operator/")]
    assert operator_rules
    cross = {**values["C"], "merchant_id": values["A"]["merchant_id"]}
    for rule in operator_rules:
        for method in sorted(rule.methods & {"GET", "POST"}):
            url, _ = fill(rule, values["A"])
            response = request(client, method, url, csrf=method == "POST")
            assert response.status_code == 404, (method, url, response.status_code)
            if "merchant_id" in rule.arguments:
                url, _ = fill(rule, cross)
                response = request(client, method, url, csrf=method == "POST")
                assert response.status_code == 404, (method, url, response.status_code)
    db.session.commit()
    db.session.refresh(sides["A"].merchant)
    assert sides["A"].merchant.status == "active"
    # Control: the network's own operator reaches its page.
    own = sign_in(app, sides["A"].network.operator)
    assert own.get(f"/operator/{values['A']['network_slug']}/").status_code == 200


def test_customers_objects_answer_404_to_other_customers(app, world):
    """Per-person routes outside the back office (cards, sessions): another person's id is 404."""
    sides, values = world
    stranger = sign_in(app, sides["B"].customer)
    anonymous = app.test_client()
    checked = []
    personal = {"membership_id", "member_id", "session_id", "user_id", "customer_id"}
    for rule in rules(app, {"GET", "POST"}):
        if rule.rule.startswith(("/business/", "/operator/")) or not set(rule.arguments) & personal:
            continue
        url, _ = fill(rule, values["A"])
        for method in sorted(rule.methods & {"GET", "POST"}):
            protected = request(anonymous, method, url, csrf=method == "POST")
            if protected.status_code not in (302, 303) or "/auth/login" not in protected.headers.get("Location", ""):
                continue  # a public route: nothing personal to isolate
            response = request(stranger, method, url, csrf=method == "POST")
            assert response.status_code == 404, (method, url, response.status_code)
            checked.append(rule.endpoint)
    assert "wallet.card" in checked, checked
    # A's customer still has their session and card.
    db.session.commit()
    row = db.session.get(UserSession, sides["A"].user_session_id)
    db.session.refresh(row)
    assert row.revoked_at is None


# --------------------------------------------------------------------------- XSS


@pytest.fixture
def xss_world(app, make_user, make_network, make_merchant, make_member):
    payload = " ".join(XSS_PAYLOADS)
    side = build_side(make_user, make_network, make_merchant, make_member, text=payload)
    # A customer who registered through the form with a payload as their name.
    client = app.test_client()
    response = client.post_form("/auth/register", {
        "email": "mallory@example.com", "password": PASSWORD, "name": f"Mallory {XSS_PAYLOADS[1]}",
    })
    assert response.status_code == 303
    mallory = accounts.find_user_by_email(db.session, "mallory@example.com")
    assert XSS_PAYLOADS[1] in mallory.name
    membership = make_member(side.merchant, user=mallory, points=100)
    record_purchase(
        db.session, side.merchant, membership,
        PurchaseDraft(membership_id=membership.id, amount=5000, points_to_use=0,
                      idempotency_key=secrets.token_hex(8)),
    )
    # A merchant that applied with a payload in its name and is waiting for the operator.
    applicant = make_user(name=f"Applicant {payload}")
    merchants.apply_to_network(
        db.session, applicant, side.network,
        name=f"Pending {XSS_PAYLOADS[0]}", category="cafe", description=payload,
    )
    db.session.commit()
    return side, mallory, applicant, side.values()


class _ActiveContent(HTMLParser):
    """Elements a payload could have turned into: event-handler attributes, scripts, x images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs) -> None:
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag == "img" and ("src", "x") in attrs:
            self.found.append("<img src=x>")
        self._in_script = tag == "script"

    def handle_endtag(self, tag) -> None:
        self._in_script = False

    def handle_data(self, data) -> None:
        if self._in_script and "alert(1)" in data:
            self.found.append(f"<script>{data}</script>")


def _unescaped(body: str) -> list[str]:
    found = [p for p in XSS_PAYLOADS if p in body]
    parser = _ActiveContent()
    parser.feed(body)
    return found + parser.found


def test_xss_payloads_in_user_text_render_escaped(app, xss_world):
    side, mallory, applicant, values = xss_world
    viewers = {
        "anonymous": None, "customer": side.customer, "mallory": mallory, "owner": side.owner,
        "cashier": side.cashier, "operator": side.network.operator, "applicant": applicant,
    }
    query = {"q": XSS_PAYLOADS[1], "search": XSS_PAYLOADS[0], "next": XSS_PAYLOADS[1]}
    pages_with_payload = set()
    get_rules = [r for r in rules(app, {"GET"}) if r.endpoint not in ("assets.vendor",)]
    for who, user in viewers.items():
        client = sign_in(app, user)
        for rule in get_rules:
            url, _ = fill(rule, values)
            for htmx in (False, True):
                for args in ({}, query):
                    try:
                        response = client.get(url, query_string=args,
                                              headers={"HX-Request": "true"} if htmx else {})
                    except Exception as error:
                        pytest.fail(f"GET {url} {args} as {who} raised {error!r}")
                    assert response.status_code < 500, (who, url, args, response.status_code)
                    if response.mimetype not in ("text/html", "image/svg+xml"):
                        continue
                    body = response.get_data(as_text=True)
                    assert not _unescaped(body), (who, url, args, _unescaped(body))
                    if "&lt;script&gt;alert(1)&lt;/script&gt;" in body or "onerror=alert(1)&gt;" in body:
                        pages_with_payload.add(rule.endpoint)
    # The payloads really were on the pages (escaped), so the check above was not vacuous.
    expected = {
        "public.merchant", "public.directory", "wallet.index", "wallet.card", "account.index",
        "business.customers", "business.customer", "business.home", "operator.index",
    }
    assert expected <= pages_with_payload, expected - pages_with_payload


def test_pages_follow_the_strict_csp(app, world):
    """No inline scripts, inline styles, inline event handlers or javascript: URLs on any page:
    the CSP would block them, so they would be broken features."""
    sides, values = world
    side = sides["A"]
    problems = []
    for user in (None, side.customer, side.owner, side.cashier, side.network.operator):
        client = sign_in(app, user)
        for rule in rules(app, {"GET"}):
            url, _ = fill(rule, values["A"])
            for htmx in (False, True):
                response = client.get(url, headers={"HX-Request": "true"} if htmx else {})
                if response.mimetype != "text/html":
                    continue
                body = response.get_data(as_text=True)
                for pattern, what in (
                    (r"<script(?![^>]*\ssrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", "inline script"),
                    (r"<[a-zA-Z][^>]*\sstyle=", "style attribute"),
                    (r"<[a-zA-Z][^>]*\son[a-z]+=", "event handler attribute"),
                    (r"<[a-zA-Z][^>]*\shx-on", "hx-on attribute"),
                    (r"(?:href|src|action)=\"\s*javascript:", "javascript: URL"),
                ):
                    if re.search(pattern, body):
                        problems.append((url, htmx, what))
    assert problems == []
