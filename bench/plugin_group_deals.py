"""Group deals at scale: joining a deal of 10,000 participants against one of 10, and the deal
page's statements at both sizes.

In-process service calls (``services.join`` in a fresh app context per join, like a request) on
one SQLite file, the two sides interleaved round by round, so the ratio shows whether any work
grows with the participants (goal: at least 0.8). The deal page is fetched with Flask's test
client while every statement is counted (goal: the same number at both sizes).
``run(results)`` stores ``group_deals_joins_10000_vs_10``, the raw rates and
``group_deals_page_statements_10`` / ``group_deals_page_statements_10000``.
"""

from __future__ import annotations

import itertools
import os
from datetime import timedelta
from pathlib import Path

from bench.inprocess import interleaved, plugin_workdir

ROUNDS = 5
SECONDS = 1.0
LARGE = 10_000
SMALL = 10
POOL = 4_000  # fresh joiners per side: more than the rounds can use


def _setup(workdir: Path):
    os.environ.setdefault("NEIGHBOURLY_TASKS_DB", str(workdir / "tasks.db"))
    from sqlalchemy import insert

    from plugins.group_deals import services
    from plugins.group_deals.models import Deal, Pledge
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Membership, User
    from webapp.models.base import utcnow
    from webapp.plugins import registry
    from webapp.services import accounts
    from webapp.services import merchants as merchant_service

    database = workdir / "group_deals.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    app = create_app({
        "DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": "bench-secret-key",
        "PLUGINS": ["plugins.group_deals"], "LOAD_ENTRY_POINT_PLUGINS": False,
        "FAST_PASSWORD_HASHING": True, "TASKS_IMMEDIATE": True, "MAIL_BACKEND": "locmem",
    })
    with app.app_context():
        db.create_all()
        operator = accounts.register_user(db.session, email="op@example.com", password="bench password 1", name="Op")
        network = merchant_service.create_network(db.session, "Bench Street", "KZT", operator, slug="bench-street")
        owner = accounts.register_user(db.session, email="owner@example.com", password="bench password 1", name="O")
        shop = merchant_service.apply_to_network(
            db.session, owner, network, name="Bakery", category="bakery", cashback_bp=500,
            max_points_share_pct=50, address="1 Abay Avenue", opening_hours="9-21",
        )
        shop.status = "active"
        db.session.commit()
        merchant_service.set_plugin_enabled(db.session, registry(), shop, "group_deals", True, owner)

        now = utcnow()
        total = LARGE + SMALL + 2 * POOL
        db.session.execute(insert(User), [
            {"email": f"p{n}@example.com", "name": f"P {n}", "card_code": f"B{n:015d}", "created_at": now}
            for n in range(total)
        ])
        first_user = db.session.scalar(db.select(db.func.min(User.id)).where(User.email.like("p%@example.com")))
        db.session.execute(insert(Membership), [
            {"user_id": first_user + n, "merchant_id": shop.id, "joined_at": now, "join_source": "link"}
            for n in range(total)
        ])
        db.session.commit()
        first_membership = db.session.scalar(db.select(db.func.min(Membership.id)).where(Membership.merchant_id == shop.id))

        def deal(size: int, offset: int) -> int:
            data = services.DealInput(
                title=f"Deal of {size}", description="", regular_price=100_000,
                tiers=(services.TierStep(5, 90_000), services.TierStep(10 * LARGE, 80_000)),
                max_participants=None, max_quantity=3, deadline=now + timedelta(days=30), redeem_days=14,
            )
            created = services.create_draft(db.session, shop, data)
            services.publish(db.session, shop, created.id)
            db.session.execute(insert(Pledge), [
                {"deal_id": created.id, "user_id": first_user + offset + n,
                 "membership_id": first_membership + offset + n, "quantity": 1, "kind": "current",
                 "status": "active", "joined_at": now}
                for n in range(size)
            ])
            db.session.execute(db.update(Deal).where(Deal.id == created.id).values(participants=size))
            db.session.commit()
            return created.id

        large_id = deal(LARGE, 0)
        small_id = deal(SMALL, LARGE)
        pools = {
            "large": (large_id, [first_user + LARGE + SMALL + n for n in range(POOL)]),
            "small": (small_id, [first_user + LARGE + SMALL + POOL + n for n in range(POOL)]),
        }
        ids = (shop.id, shop.slug, pools)
        db.session.remove()
    return app, ids


def _page_statements(app, slug: str, deal_id: int) -> int:
    from sqlalchemy import event

    from webapp.extensions import db

    with app.app_context():
        client = app.test_client()
        client.get(f"/m/{slug}/deals/{deal_id}")  # warm: compiled statements, caches
        seen: list[str] = []

        def record(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            response = client.get(f"/m/{slug}/deals/{deal_id}")
            client.get(f"/m/{slug}/deals/{deal_id}/progress", headers={"HX-Request": "true"})
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        if response.status_code != 200:
            raise RuntimeError(f"the deal page answered {response.status_code}")
        db.session.remove()
    return len(seen)


def run(results: dict) -> None:
    """Measure both joins turn by turn and count the page's statements at both sizes."""
    workdir = plugin_workdir()
    app, (shop_id, slug, pools) = _setup(workdir)

    from plugins.group_deals import services
    from plugins.group_deals.models import Deal
    from webapp.extensions import db
    from webapp.models import Merchant

    def joiner(deal_id: int, users: list[int]):
        queue = itertools.cycle(users)  # more users than the rounds use: each joins once

        def join() -> None:
            with app.app_context():
                merchant = db.session.get(Merchant, shop_id)
                services.join(db.session, merchant, deal_id, next(queue), 1, "current")
                db.session.remove()
        return join

    operations = {name: joiner(*side) for name, side in pools.items()}
    for _warm in range(20):
        for operation in operations.values():
            operation()
    rates = interleaved(operations, ROUNDS, SECONDS)
    with app.app_context():
        large = db.session.get(Deal, pools["large"][0]).participants
        small = db.session.get(Deal, pools["small"][0]).participants
        db.session.remove()
    if large < LARGE + 20 or small < SMALL + 20:
        raise RuntimeError("the joins did not land: the measurement would be meaningless")
    results["group_deals_joins_10000_vs_10"] = round(rates["large"] / rates["small"], 3)
    results["group_deals_joins_per_second_at_10000"] = round(rates["large"], 1)
    results["group_deals_joins_per_second_at_10"] = round(rates["small"], 1)
    results["group_deals_page_statements_10000"] = _page_statements(app, slug, pools["large"][0])
    results["group_deals_page_statements_10"] = _page_statements(app, slug, pools["small"][0])
    results["group_deals_method"] = "in-process services.join, SQLite WAL, interleaved rounds; page + progress fragment statements"
    with app.app_context():
        db.engine.dispose()


if __name__ == "__main__":
    import json

    measured: dict = {}
    run(measured)
    print(json.dumps(measured, indent=2))
