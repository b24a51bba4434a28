"""A POS simulator: a plain HTTP client that knows only the curl examples of
docs/pos-integration.md rings up 100 sales (some sent twice, as after a lost answer), 10 refunds
and 5 certificate redemptions against gunicorn on loopback, on SQLite and PostgreSQL; then the
ledger invariants hold, every balance the API shows is what the answers added up to, and the
shop's webhook receiver got exactly one signed delivery for every sale and refund the API recorded.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from tests.api.pos_site import PRICE, as_request, command_for, database, seed, served
from tests.conftest import make_app
from tests.webhooks.receiver import Receiver
from webapp import outbox
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, Purchase
from webapp.services.ledger import find_balance_mismatches

pytestmark = pytest.mark.slow

SALES, REFUNDS, REDEMPTIONS, CUSTOMERS = 100, 10, 5, 10


class Pos:
    """Sends the guide's requests, with its own values in the guide's variables and fields."""

    def __init__(self, base_url: str, key: str) -> None:
        self.variables = {"NEIGHBOURLY": base_url, "KEY": key}

    def send(self, example: str, body: dict | None = None, **variables) -> tuple[int, dict, dict]:
        request = as_request(command_for(example), {**self.variables, **variables})
        if body is not None:  # the guide's own fields, with this sale's values
            request = replace(request, body=json.dumps({**json.loads(request.body), **body}).encode())
        http = urllib.request.Request(request.url, data=request.body, method=request.method, headers=request.headers)
        try:
            with urllib.request.urlopen(http, timeout=30) as answer:  # noqa: S310 - loopback only
                return answer.status, dict(answer.headers), json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_pos_records_sales_refunds_and_redemptions_and_the_ledger_holds(backend, tmp_path):
    with database(backend, tmp_path) as url, Receiver() as receiver:
        site = seed(url, customers=CUSTOMERS, certificates=REDEMPTIONS)
        receiver.secrets.append(subscribe(url, receiver.url))
        with served(site, tmp_path, workers=2):
            pos = Pos(site.base_url, site.secret)
            expected_events: list[tuple[str, int]] = []
            balances: dict[int, int] = {}
            cards: dict[int, str] = {}
            sales: list[dict] = []
            for number in range(SALES):
                status, _h, customer = pos.send("/customers/lookup", CARD_CODE=site.card_codes[number % CUSTOMERS])
                assert status == 200, customer
                membership_id = customer["id"]
                cards[membership_id] = site.card_codes[number % CUSTOMERS]
                balances.setdefault(membership_id, customer["balance"])
                amount = PRICE + 1_000 * number
                status, _h, quote = pos.send("/quote", {"amount": amount}, MEMBERSHIP_ID=membership_id)
                assert status == 200 and quote["balance"] == balances[membership_id], (quote, balances[membership_id])
                points = quote["max_points"] if number % 3 == 0 else 0
                key = f"receipt-{uuid.uuid4().hex[:12]}"
                body = {"amount": amount, "points_to_use": points}
                status, _h, sale = pos.send("/api/v1/purchases\"", body, MEMBERSHIP_ID=membership_id, SALE_KEY=key)
                assert status == 201, sale
                if number % 7 == 0:  # the answer was lost: the POS sends the same sale again
                    again_status, headers, again = pos.send(
                        "/api/v1/purchases\"", body, MEMBERSHIP_ID=membership_id, SALE_KEY=key
                    )
                    assert (again_status, again) == (201, sale) and headers.get("Idempotent-Replayed") == "true"
                balances[membership_id] += sale["points_earned"] - sale["points_used"]
                sales.append(sale)
                expected_events.append(("purchase.recorded", sale["id"]))

            for sale in sales[-REFUNDS:]:  # each customer's last sale: its points are not spent yet
                key = f"refund-{uuid.uuid4().hex[:12]}"
                status, _h, refunded = pos.send("/refund", PURCHASE_ID=sale["id"], REFUND_KEY=key)
                assert status == 200 and refunded["refunded_at"], refunded
                assert pos.send("/refund", PURCHASE_ID=sale["id"], REFUND_KEY=key)[2] == refunded
                balances[sale["membership_id"]] -= sale["points_earned"] - sale["points_used"]
                expected_events.append(("purchase.refunded", sale["id"]))

            for code in site.certificate_codes:
                status, _h, certificate = pos.send("/certificates/lookup", CERTIFICATE_CODE=code)
                assert status == 200 and certificate["usable"], certificate
                membership_id = certificate["membership_id"]
                variables = {"CERTIFICATE_CODE": code, "MEMBERSHIP_ID": membership_id,
                             "REDEEM_KEY": f"receipt-{uuid.uuid4().hex[:12]}"}
                status, _h, redeemed = pos.send("/certificates/redeem", **variables)
                assert status == 201 and redeemed["value_used"] == 50_000, redeemed
                status, _h, declined = pos.send(
                    "/certificates/redeem", **{**variables, "REDEEM_KEY": f"receipt-{uuid.uuid4().hex[:12]}"}
                )
                assert status == 422 and "already been used" in declined["detail"], declined
                purchase = redeemed["purchase"]
                balances[membership_id] += purchase["points_earned"] - purchase["points_used"]
                expected_events.append(("purchase.recorded", purchase["id"]))

            # Every balance the API shows is what its own answers added up to.
            for membership_id, card in cards.items():
                status, _h, shown = pos.send("/customers/lookup", CARD_CODE=card)
                assert (status, shown["id"], shown["balance"]) == (200, membership_id, balances[membership_id])
            listed, cursor = [], None
            while True:
                variables = {"NEXT_CURSOR": cursor} if cursor else {}
                example = "cursor=$NEXT_CURSOR" if cursor else "purchases?limit=1\""
                status, _h, page = pos.send(example, **variables)
                assert status == 200
                listed += page["data"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert len(listed) == SALES + REDEMPTIONS == len({row["id"] for row in listed})
            assert sum(1 for row in listed if row["refunded_at"]) == REFUNDS
        # The ledger, read from the database the site wrote.
        check_ledger(url, balances, expected_events)
        check_webhooks(url, receiver, expected_events)


def subscribe(url: str, receiver_url: str) -> str:
    """The shop's integrator registers the receiver for sales and refunds; the secret shown once."""
    from webapp.models import Merchant
    from webapp.services import webhooks

    app = make_app(url)
    with app.app_context():
        try:
            shop = db.session.scalars(select(Merchant).order_by(Merchant.id)).first()
            return webhooks.create_endpoint(
                db.session, shop, url=receiver_url, events=["purchase.recorded", "purchase.refunded"],
                created_by_id=None,
            ).secret
        finally:
            db.session.remove()
            db.engine.dispose()


def check_webhooks(url: str, receiver: Receiver, expected_events: list[tuple[str, int]]) -> None:
    app = make_app(url, OUTBOX_RELAY_GRACE_SECONDS=0)
    with app.app_context():
        try:  # what no worker sent yet goes out now, as the worker's relay would send it
            while outbox.relay_due(db.session, run_here=True):
                pass
        finally:
            db.session.remove()
            db.engine.dispose()
    received = [(request.payload["type"], request.payload["data"]["id"]) for request in receiver.requests]
    assert sorted(received) == sorted(expected_events)
    assert all(request.verified_with == receiver.secrets for request in receiver.requests)
    assert len({request.message_id for request in receiver.requests}) == len(receiver.requests)


def check_ledger(url: str, balances: dict[int, int], expected_events: list[tuple[str, int]]) -> None:
    app = make_app(url)
    with app.app_context():
        try:
            assert find_balance_mismatches(db.session) == []
            stored = dict(db.session.execute(select(Membership.id, Membership.balance)).all())
            assert {mid: stored[mid] for mid in balances} == balances
            sums = dict(db.session.execute(
                select(LedgerEntry.membership_id, func.sum(LedgerEntry.amount)).group_by(LedgerEntry.membership_id)
            ).all())
            assert all(balance == sums.get(mid, 0) and balance >= 0 for mid, balance in stored.items())
            recorded = {pid for kind, pid in expected_events if kind == "purchase.recorded"}
            assert db.session.scalar(select(func.count(Purchase.id)).where(Purchase.id.in_(recorded))) == len(recorded)
        finally:
            db.session.remove()
            db.engine.dispose()
