"""Schemathesis against the app's own ``/api/v1/openapi.json`` (in-process WSGI), with a valid
till key, on SQLite and PostgreSQL: no 5xx, every answer's status, media type, headers and body
as documented. Generated ids are swapped for real ones on about half the cases (by the case's
own data, so Hypothesis explores both), so success answers are reached, not only 404s; the
stateful run follows the document's links (lookup -> membership, sale -> get/refund).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from plugins.cross_marketing import services as certificate_services
from plugins.cross_marketing.models import Certificate
from tests.api.test_api import new_key
from tests.kit import enable_plugins
from tests.plugins.cross_marketing.conftest import buy, make_offer, partner
from webapp.extensions import db
from webapp.models import Membership
from webapp.services import codes, price_items

CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_headers_conformance, response_schema_conformance,
]
EXAMPLES = 15  # per operation; the whole file stays well under a minute per database


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.cross_marketing"], "API_RATE_LIMIT": "100000 per minute"}


class World:
    """Real ids of the key's merchant, and a key."""

    def __init__(self, make_merchant, make_member, make_user, give_points):
        shop = make_merchant(name="Café Lipa")
        neighbour = make_merchant(name="Salon Aru")
        enable_plugins(shop, "cross_marketing")
        enable_plugins(neighbour, "cross_marketing")
        offer = make_offer(shop)
        partner(shop, neighbour, offer)
        self.members = []
        self.cards, self.codes = [], []
        for number in range(3):
            user = make_user(phone=f"+7701123456{number}")
            at_neighbour = make_member(neighbour, user=user)
            buy(neighbour, at_neighbour)  # the neighbour hands out the shop's certificate
            member = make_member(shop, user=user)
            give_points(member, 5_000)
            self.members.append(member.id)
            self.cards.append(user.card_code)
        self.holders = []
        for certificate in db.session.scalars(select(Certificate).where(Certificate.issuer_id == shop.id)):
            self.codes.append(codes.group(certificate_services.unseal(certificate.code_sealed)))
            self.holders.append(db.session.scalar(select(Membership.id).where(
                Membership.user_id == certificate.holder_id, Membership.merchant_id == shop.id
            )))
        self.purchases = [buy(shop, db.session.get(Membership, member_id)).id for member_id in self.members]
        price_items.add_items(db.session, shop, [
            price_items.ItemRow(None, "Flat white", 1_500), price_items.ItemRow(None, "Scone", 800),
        ], "en")
        self.price_items = [item.id for item in price_items.items_of(db.session, shop)]
        self.secret = new_key(shop)
        self.headers = {"Authorization": f"Bearer {self.secret}"}
        db.session.commit()

    def pick(self, generated, pool):
        """A real id for about half of the generated values (chosen by the value itself)."""
        if isinstance(generated, int) and not isinstance(generated, bool) and generated % 2 == 0:
            return pool[generated // 2 % len(pool)]
        if isinstance(generated, str) and len(generated) % 2 == 0:
            return pool[len(generated) // 2 % len(pool)]
        return generated

    def adapt(self, case) -> None:
        path = case.path_parameters or {}
        if "membership_id" in path:
            path["membership_id"] = self.pick(path["membership_id"], self.members)
        if "purchase_id" in path:
            path["purchase_id"] = self.pick(path["purchase_id"], self.purchases)
        query = case.query or {}
        if "membership_id" in query:
            query["membership_id"] = self.pick(query["membership_id"], self.members)
        if "card_code" in query:
            query["card_code"] = self.pick(query["card_code"], self.cards)
            if query["card_code"] in self.cards:  # a real card alone: the lookup finds its member
                query.pop("qr", None)
                query.pop("phone", None)
        if "code" in query:
            query["code"] = self.pick(query["code"], self.codes)
        if isinstance(case.body, dict):
            lines = case.body.get("items")
            if isinstance(lines, list) and lines:
                for line in lines:
                    if isinstance(line, dict) and "price_item_id" in line:
                        line["price_item_id"] = self.pick(line["price_item_id"], self.price_items)
                if all(isinstance(line, dict) and line.get("price_item_id") in self.price_items for line in lines):
                    case.body.pop("amount", None)  # the items' sum is the bill
                elif len(lines) % 2 == 0:  # about half the made-up lists go, so typed bills sell too
                    case.body.pop("items")
            if "items" not in case.body and "amount" not in case.body and "points_to_use" in case.body:
                # A sale needs a bill: about half the bodies without items or amount get one.
                case.body["amount"] = 10_000
            if "membership_id" in case.body:
                case.body["membership_id"] = self.pick(case.body["membership_id"], self.members)
            if "code" in case.body:
                case.body["code"] = self.pick(case.body["code"], self.codes)
                if case.body["code"] in self.codes:  # its holder pays with it, points optional
                    case.body["membership_id"] = self.holders[self.codes.index(case.body["code"])]
                    case.body["points_to_use"] = case.body.get("points_to_use", 0) % 2
            elif case.body.get("membership_id") in self.members and "points_to_use" in case.body:
                # A real card pays a few points at most, so some sales go through, not only declines.
                case.body["points_to_use"] = case.body["points_to_use"] % 2


@pytest.fixture
def world(app, make_merchant, make_member, make_user, give_points):
    return World(make_merchant, make_member, make_user, give_points)


@pytest.fixture
def api_schema(app, world):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.config.generation.update(max_examples=EXAMPLES, modes=["positive"], database="none")
    return schema


def test_every_answer_is_as_documented(app, api_schema, world):
    seen: dict[str, set[int]] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        label = operation.label

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  derandomize=True)  # the same examples on every run: CI does not depend on a draw
        def run(case):
            world.adapt(case)
            response = case.call_and_validate(headers=world.headers, checks=CHECKS)
            seen.setdefault(label, set()).add(response.status_code)  # noqa: B023 - run() is called at once

        run()
    # The real ids make every operation succeed at least once, not only answer 404 or 422.
    assert len(seen) >= 10
    assert {label for label, statuses in seen.items() if not any(200 <= s < 300 for s in statuses)} == set(), seen


def test_following_the_links_keeps_every_answer_as_documented(app, api_schema, world):
    machine = api_schema.as_state_machine()

    class Till(machine):
        def before_call(self, case):
            world.adapt(case)

        def get_call_kwargs(self, case):
            return {"headers": world.headers}

        def validate_response(self, response, case, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Till.run(settings=settings(
        max_examples=EXAMPLES, stateful_step_count=6, deadline=None,
        suppress_health_check=list(HealthCheck), database=None, derandomize=True,
    ))
