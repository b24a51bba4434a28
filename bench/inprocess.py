"""In-process measurements on one backend: the purchase service, the staff and wallet pages, growth.

Run by ``python -m bench`` as ``python -m bench.inprocess LARGE.json SMALL.json`` (one process per
backend, so each gets its own task-queue storage from the environment); prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from flask import Flask, url_for
from sqlalchemy import event, select

from bench.checkout import purchase_endpoint
from bench.floor_app import FloorRow, create_floor_app, floor_db
from bench.seed import SeedInfo
from webapp import create_app
from webapp.extensions import db
from webapp.models import Membership, Merchant, User
from webapp.services import merchants as merchant_service
from webapp.services.purchases import PurchaseDraft, record_purchase

PAGES = ("dashboard", "customers", "wallet")
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def neighbourly_app(database_url: str) -> Flask:
    """The real app as deployed (development config: argon2 defaults, CSRF on)."""
    return create_app({"DATABASE_URL": database_url, "SECRET_KEY": "bench-secret-key"})


def enable_every_plugin(app: Flask, slug: str, owner_email: str) -> list[str]:
    """Switch on every installed plugin for the merchant (dependencies first), as its owner would."""
    with app.app_context():
        registry = app.extensions["neighbourly"]
        merchant = db.session.scalar(select(Merchant).where(Merchant.slug == slug))
        owner = db.session.scalar(select(User).where(User.email == owner_email))
        ordered = registry.in_dependency_order()
        for name in ordered:
            merchant_service.set_plugin_enabled(db.session, registry, merchant, name, True, actor=owner)
        db.session.remove()
        return ordered


def rate(operation: Callable[[], None], seconds: float, max_operations: int = 100_000) -> float:
    """Operations per second of a bounded loop (at most ``seconds`` or ``max_operations``)."""
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while done < max_operations:
        operation()
        done += 1
        if time.perf_counter() >= deadline:
            break
    return done / (time.perf_counter() - started)


def interleaved(operations: dict[str, Callable[[], None]], rounds: int, seconds: float) -> dict[str, float]:
    """Median rate of each operation over rounds that alternate between them (fair under noise)."""
    samples: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(rounds):
        for name, operation in operations.items():
            samples[name].append(rate(operation, seconds))
    return {name: statistics.median(values) for name, values in samples.items()}


def plugin_checkouts(
    app: Flask, sides: dict[str, tuple[int, list[int]]], rounds: int, seconds: float
) -> dict[str, float]:
    """For the plugin benches: ``record_purchase`` per second for each side (merchant id, card
    ids), one sale per fresh app context like a request, sides interleaved round by round."""
    from webapp.extensions import db
    from webapp.models import Membership, Merchant
    from webapp.services.purchases import PurchaseDraft, record_purchase

    counter = {"n": 0}

    def checkout(merchant_id: int, members: list[int]) -> Callable[[], None]:
        def sale() -> None:
            number = counter["n"] = counter["n"] + 1
            with app.app_context():
                merchant = db.session.get(Merchant, merchant_id)
                membership = db.session.get(Membership, members[number % len(members)])
                record_purchase(db.session, merchant, membership, PurchaseDraft(
                    membership_id=membership.id, amount=450_000, points_to_use=0,
                    idempotency_key=uuid.uuid4().hex,
                ))
        return sale

    operations = {name: checkout(*side) for name, side in sides.items()}
    for _warm in range(20):
        for operation in operations.values():
            operation()
    return interleaved(operations, rounds, seconds)


def plugin_workdir() -> Path:
    """Where the plugin benches keep their SQLite files (``BENCH_WORKDIR``)."""
    import os
    import tempfile

    workdir = Path(os.environ.get("BENCH_WORKDIR", Path(tempfile.gettempdir()) / "neighbourly-bench"))
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def alternating_latency(first: Callable[[], None], second: Callable[[], None], seconds: float) -> tuple[float, float]:
    """Median latency of two operations run one after the other, turn by turn (noise hits both)."""
    times: tuple[list[float], list[float]] = ([], [])
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times[0]) < 5:
        for index, operation in enumerate((first, second)):
            started = time.perf_counter()
            operation()
            times[index].append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


# --------------------------------------------------------------------------- (b) the service


def service_operations(app: Flask, floor: Flask, info: SeedInfo) -> dict[str, Callable[[], None]]:
    members = info.checkout_members
    state = {"n": 0}
    with app.app_context():
        merchant_id = db.session.scalar(select(Merchant.id).where(Merchant.slug == info.merchant_slug))

    def purchase() -> None:
        # Like a request: a fresh app context and session, the two inputs loaded by primary key.
        number = state["n"] = state["n"] + 1
        with app.app_context():
            merchant = db.session.get(Merchant, merchant_id)
            membership = db.session.get(Membership, members[number % len(members)])
            points = 100 if number % 4 == 0 and membership.balance >= 100 else 0
            record_purchase(
                db.session, merchant, membership,
                PurchaseDraft(
                    membership_id=membership.id, amount=450_000, points_to_use=points,
                    idempotency_key=uuid.uuid4().hex,
                ),
            )

    def insert() -> None:
        with floor.app_context():
            floor_db.session.add(FloorRow(amount=450_000, note="bench"))
            floor_db.session.commit()

    return {"service": purchase, "floor_insert": insert}


def sale_statements(app: Flask, info: SeedInfo) -> dict[str, int]:
    """SQL statements ``record_purchase`` sends for one sale (every plugin on), as the service
    rounds make it: a fresh app context, the merchant and card loaded by primary key (not
    counted), then the sale itself counted to its commit. A plain sale and one spending points,
    each after a warm-up sale of the same kind. The follow-up work it leaves in the outbox runs
    in the worker (none runs during the bench) and is not counted."""
    counter = QueryCounter(app)
    with app.app_context():
        merchant_id = db.session.scalar(select(Merchant.id).where(Merchant.slug == info.merchant_slug))
        spender = db.session.scalar(
            select(Membership.id).where(Membership.id.in_(info.checkout_members), Membership.balance >= 1_000)
            .order_by(Membership.id).limit(1)
        )

    def sale(membership_id: int, points: int) -> int:
        with app.app_context():
            merchant = db.session.get(Merchant, merchant_id)
            membership = db.session.get(Membership, membership_id)
            merchant.network  # noqa: B018 - loaded with the merchant on the staff pages
            draft = PurchaseDraft(membership_id=membership.id, amount=450_000, points_to_use=points,
                                  idempotency_key=uuid.uuid4().hex)
            return counter.during(lambda: record_purchase(db.session, merchant, membership, draft))

    counts = {}
    for kind, membership_id, points in (("plain", info.checkout_members[1], 0), ("points", spender, 100)):
        if membership_id is None:
            continue
        sale(membership_id, points)  # warm
        counts[kind] = sale(membership_id, points)
    return counts


# --------------------------------------------------------------------------- (c) pages


def signed_in(app: Flask, email: str, password: str):
    client = app.test_client()
    with app.test_request_context():
        login = url_for("auth.login")
    token = CSRF_META.search(client.get(login).get_data(as_text=True)).group(1)
    response = client.post(login, data={"email": email, "password": password, "csrf_token": token})
    if response.status_code != 303:
        raise RuntimeError(f"could not sign in {email}: {response.status_code}")
    return client


def page_urls(app: Flask, slug: str) -> dict[str, str]:
    with app.test_request_context():
        return {
            "dashboard": url_for("business.dashboard", merchant_slug=slug),
            "customers": url_for("business.customers", merchant_slug=slug),
            "wallet": url_for("wallet.index"),
        }


class QueryCounter:
    """Counts SQL statements sent by an app's engine (SQLite's ``BEGIN IMMEDIATE`` excluded)."""

    def __init__(self, app: Flask) -> None:
        with app.app_context():
            self.engine = db.engine
        self.count = 0
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            self.count += 1

    def during(self, operation: Callable[[], None]) -> int:
        before = self.count
        operation()
        return self.count - before


def page_operations(app: Flask, info: SeedInfo) -> dict[str, Callable[[], None]]:
    owner = signed_in(app, info.owner_email, info.password)
    customer = signed_in(app, info.wallet_email, info.password)
    urls = page_urls(app, info.merchant_slug)

    def getter(client, url: str) -> Callable[[], None]:
        def get() -> None:
            response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")

        return get

    operations = {
        "dashboard": getter(owner, urls["dashboard"]),
        "customers": getter(owner, urls["customers"]),
        "wallet": getter(customer, urls["wallet"]),
    }
    return operations


def core_figures_operation(app: Flask, info: SeedInfo) -> Callable[[], None]:
    """The core's dashboard figures alone (``analytics.dashboard_figures``), without any panel."""
    from webapp.services import analytics

    with app.app_context():
        merchant_id = db.session.scalar(select(Merchant.id).where(Merchant.slug == info.merchant_slug))

    def figures() -> None:
        with app.app_context():
            analytics.dashboard_figures(db.session.get(Merchant, merchant_id), db.session)

    return figures


def count_queries(app: Flask, operations: dict[str, Callable[[], None]]) -> dict[str, int]:
    counter = QueryCounter(app)
    for operation in operations.values():
        operation()  # warm: template compilation, plugin caches
    return {name: counter.during(operation) for name, operation in operations.items()}


def checkout_queries(app: Flask, info: SeedInfo) -> int:
    """SQL statements of one till purchase POST (htmx, as the till sends it), after a warm-up."""
    cashier = signed_in(app, info.cashier_email, info.password)
    with app.test_request_context():
        till = url_for("cashier.till", merchant_slug=info.merchant_slug)
        purchase = url_for(purchase_endpoint(app), merchant_slug=info.merchant_slug)
    token = CSRF_META.search(cashier.get(till).get_data(as_text=True)).group(1)

    def post() -> None:
        response = cashier.post(
            purchase,
            data={"membership_id": info.checkout_members[0], "amount": "4500", "points": "",
                  "idempotency_key": uuid.uuid4().hex},
            headers={"HX-Request": "true", "X-CSRFToken": token},
        )
        if response.status_code != 200:
            raise RuntimeError(f"the till answered {response.status_code}")

    return count_queries(app, {"checkout": post})["checkout"]


# --------------------------------------------------------------------------- main


def measure(large: SeedInfo, small: SeedInfo, rounds: int, seconds: float) -> dict:
    app_large, app_small = neighbourly_app(large.database_url), neighbourly_app(small.database_url)
    plugins = enable_every_plugin(app_large, large.merchant_slug, large.owner_email)
    enable_every_plugin(app_small, small.merchant_slug, small.owner_email)
    floor = create_floor_app(large.database_url)
    floor_page = floor.test_client()

    def floor_get() -> None:
        if floor_page.get("/page").status_code != 200:
            raise RuntimeError("floor page failed")

    log("  pages: counting queries at both sizes")
    pages_large = page_operations(app_large, large)
    pages_small = page_operations(app_small, small)
    queries = {"large": count_queries(app_large, pages_large), "small": count_queries(app_small, pages_small)}
    many = signed_in(app_large, large.wallet_many_email, large.password)
    wallet_url = page_urls(app_large, large.merchant_slug)["wallet"]
    wallet_by_cards = {
        large.wallet_cards: queries["large"]["wallet"],
        large.wallet_many_cards: count_queries(app_large, {"wallet": lambda: many.get(wallet_url)})["wallet"],
    }
    floor_get()

    log("  pages: throughput against the 50-row floor page")
    page_rates = interleaved({**pages_large, "floor_page": floor_get}, rounds, seconds)
    log("  dashboard of the largest merchant at both sizes, turn by turn")
    latency_large, latency_small = alternating_latency(
        pages_large["dashboard"], pages_small["dashboard"], rounds * seconds
    )
    core_large, core_small = alternating_latency(
        core_figures_operation(app_large, large), core_figures_operation(app_small, small), seconds
    )

    per_checkout = checkout_queries(app_large, large)
    per_sale = sale_statements(app_large, large)
    log("  purchase service against one ORM insert + commit")
    operations = service_operations(app_large, floor, large)
    for operation in operations.values():
        operation()
    service_rates = interleaved(operations, rounds, seconds)

    from webapp import tasks

    tasks.queue(app_large).flush()  # after-commit tasks queued by the measured purchases; no worker runs here
    return {
        "plugins_enabled": plugins,
        "queries_per_page": queries,
        "queries_independent_of_size": queries["large"] == queries["small"],
        "wallet_queries_by_cards": wallet_by_cards,
        "page_rates": page_rates,
        "pages_vs_floor": {page: page_rates[page] / page_rates["floor_page"] for page in PAGES},
        "dashboard_latency_ms": {"large": latency_large * 1000, "small": latency_small * 1000},
        "dashboard_growth": latency_large / latency_small,
        "core_figures_growth": core_large / core_small,
        "queries_per_checkout": per_checkout,
        "statements_per_sale": max(per_sale.values()),
        "statements_per_sale_by_kind": per_sale,
        "service_rates": service_rates,
        "service_vs_floor": service_rates["service"] / service_rates["floor_insert"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("large", type=Path)
    parser.add_argument("small", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    result = measure(SeedInfo.load(args.large), SeedInfo.load(args.small), args.rounds, args.seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
