"""Find it on the street at scale: 1,000 merchants × 50 price items (50,000 searchable items).

Requests per second of the street search page (``GET /n/<street>/street?q=латте``, the full page
through Flask's test client, in process) divided by requests per second of the 50-row floor page
(``bench.floor_app``, same database file and settings), the two interleaved round by round in the
same run (goal: at least 0.5). The page keeps rendered searches per process for the rest of their
minute (``webapp.services.street_cache``), so the repeated query mostly measures cache hits; the
uncached rate is measured in the same rounds by clearing that cache before every request
(``street_search_cold_vs_floor_<backend>``). Statements of one uncached search are counted on a
street of 10 merchants and on the one of 1,000 (goal: the same number).

``run(results, backends, quick=False)`` stores ``street_search_vs_floor_<backend>``, the raw rates
and ``street_search_statements_10`` / ``street_search_statements_1000`` per backend. ``--quick``
(and ``python -m bench --quick``) seeds 100 merchants × 20 items instead.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from bench.inprocess import interleaved, plugin_workdir

ROUNDS = 5
SECONDS = 1.0
QUERY = "латте"

# (name, category, price in whole tenge): each merchant sells a rotating slice, with variants.
CATALOGUE = [
    ("Латте", "Кофе", 1200),
    ("Капучино", "Кофе", 1100),
    ("Американо", "Кофе", 900),
    ("Раф", "Кофе", 1400),
    ("Флэт уайт", "Кофе", 1300),
    ("Эспрессо", "Кофе", 700),
    ("Чай зелёный", "Чай", 600),
    ("Чай чёрный", "Чай", 500),
    ("Круассан", "Выпечка", 800),
    ("Булочка с корицей", "Выпечка", 600),
    ("Хлеб ржаной", "Хлеб", 450),
    ("Багет", "Хлеб", 500),
    ("Торт медовый", "Торты", 6500),
    ("Чизкейк", "Десерты", 1500),
    ("Маникюр", "Маникюр", 7000),
    ("Педикюр", "Педикюр", 9000),
    ("Стрижка мужская", "Стрижки", 3500),
    ("Стрижка женская", "Стрижки", 6000),
    ("Окрашивание", "Окрашивание", 15000),
    ("Брови", "Брови", 3000),
    ("Химчистка пальто", "Химчистка", 5000),
    ("Ремонт обуви", "Ремонт", 2500),
    ("Замена батарейки", "Ремонт", 1500),
    ("Цветы букет", "Цветы", 8000),
    ("Розы", "Цветы", 900),
    ("Плов", "Еда", 2200),
    ("Лагман", "Еда", 2000),
    ("Манты", "Еда", 1800),
    ("Самса", "Выпечка", 400),
    ("Бешбармак", "Еда", 3500),
]
VARIANTS = ["", " большой", " маленький", " на овсяном", " фирменный"]


def _seed(database_url: str, merchants: int, items: int) -> tuple[Callable, dict]:
    os.environ.setdefault("NEIGHBOURLY_TASKS_DB", str(plugin_workdir() / "tasks.db"))
    from sqlalchemy import insert, select

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Merchant, MerchantHours, PriceItem
    from webapp.models.base import utcnow
    from webapp.services import accounts, fulltext, price_items
    from webapp.services import merchants as merchant_service

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-secret-key",
            "PLUGINS": [],
            "LOAD_ENTRY_POINT_PLUGINS": False,
            "FAST_PASSWORD_HASHING": True,
            "TASKS_IMMEDIATE": True,
            "MAIL_BACKEND": "locmem",
            "RATELIMIT_ENABLED": False,
        }
    )
    slugs: dict = {}
    with app.app_context():
        db.drop_all()
        db.create_all()
        operator = accounts.register_user(
            db.session, email="op@example.com", password="bench password 1", name="Op"
        )
        now = utcnow()
        for label, count in (("small", 10), ("large", merchants)):
            network = merchant_service.create_network(
                db.session,
                f"Street {label}",
                "KZT",
                operator,
                default_locale="ru",
                slug=f"street-{label}",
            )
            network.timezone = "Asia/Almaty"
            db.session.commit()
            slugs[label] = network.slug
            db.session.execute(
                insert(Merchant),
                [
                    {
                        "network_id": network.id,
                        "name": f"Shop {label} {n}",
                        "slug": f"shop-{label}-{n}",
                        "category": "cafe",
                        "status": "active",
                        "cashback_bp": 300 + (n % 8) * 100,
                        "max_points_share_pct": 50,
                        "join_code": secrets.token_hex(5).upper(),
                        "created_at": now,
                        "description": "",
                        "address": "",
                        "phone": "",
                        "opening_hours": "",
                        "decline_reason": "",
                    }
                    for n in range(count)
                ],
            )
            ids = db.session.scalars(
                select(Merchant.id).where(Merchant.network_id == network.id)
            ).all()
            db.session.execute(
                insert(MerchantHours),
                [
                    {
                        "merchant_id": merchant_id,
                        "weekday": day,
                        "opens": 8 * 60 + (i % 4) * 60,
                        "closes": (22 * 60 + (i % 5) * 60) % 1440 or 1440,
                    }
                    for i, merchant_id in enumerate(ids)
                    for day in range(7)
                ],
            )
            for start in range(0, len(ids), 100):
                rows = []
                for i, merchant_id in enumerate(ids[start : start + 100], start=start):
                    for k in range(items):
                        name, category, price = CATALOGUE[(i + k) % len(CATALOGUE)]
                        variant = VARIANTS[(k // len(CATALOGUE) + i) % len(VARIANTS)]
                        rows.append(
                            {
                                "merchant_id": merchant_id,
                                "name": name + variant,
                                "category": category,
                                "price": (price + (i * 7 + k) % 300) * 100,
                                "position": k,
                                "created_at": now,
                                "updated_at": now,
                            }
                        )
                db.session.execute(insert(PriceItem), rows)
                chunk = db.session.execute(
                    select(
                        PriceItem.id, PriceItem.merchant_id, PriceItem.name, PriceItem.category
                    ).where(PriceItem.merchant_id.in_(ids[start : start + 100]))
                ).all()
                fulltext.index_many(
                    db.session,
                    [
                        fulltext.Document(
                            price_items.KIND, item_id, merchant_id, "ru", category, name
                        )
                        for item_id, merchant_id, name, category in chunk
                    ],
                )
                db.session.commit()
        if db.engine.dialect.name == "postgresql":
            # What autovacuum does soon after a bulk load (an insert-driven VACUUM since
            # PostgreSQL 13, and ANALYZE): the VACUUM also moves the GIN index's pending list
            # into the index, without which the planner scans all 50,000 documents instead.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")
        db.session.remove()
    return app, slugs


def _statements(app, slug: str, cold: bool = True) -> int:
    from sqlalchemy import event

    from webapp.extensions import db

    with app.app_context():
        client = app.test_client()
        client.get(f"/n/{slug}/street", query_string={"q": QUERY, "open": "1"})  # warm
        if cold:
            _clear_cache(app)
        seen: list[str] = []

        def record(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            response = client.get(f"/n/{slug}/street", query_string={"q": QUERY, "open": "1"})
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        if response.status_code != 200 or "Shop" not in response.get_data(as_text=True):
            raise RuntimeError(f"the street search answered {response.status_code} without results")
        db.session.remove()
    return len(seen)


def _clear_cache(app) -> None:
    cache = app.extensions.get("street_cache")  # made by the first search
    if cache is not None:
        cache.clear()


def _operations(app, floor, slug: str) -> tuple[Callable[[], None], ...]:
    search_client, floor_client = app.test_client(), floor.test_client()

    def search() -> None:
        with app.app_context():
            if search_client.get(f"/n/{slug}/street", query_string={"q": QUERY}).status_code != 200:
                raise RuntimeError("the street search failed")

    def cold_search() -> None:
        _clear_cache(app)  # every request searches and renders again
        search()

    def floor_page() -> None:
        with floor.app_context():
            floor_client.get("/page")

    return search, floor_page, cold_search


def _database_url(backend: str, workdir: Path) -> str:
    if backend == "postgres":
        import psycopg

        from bench.run import PG_ADMIN_URL

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
            connection.execute('DROP DATABASE IF EXISTS "neighbourly_bench_street" WITH (FORCE)')
            connection.execute('CREATE DATABASE "neighbourly_bench_street"')
        return (
            "postgresql+psycopg://"
            + PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
            + "/neighbourly_bench_street"
        )
    path = workdir / "street_search.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def run(results: dict, backends: list[str] | None = None, quick: bool = False, echo=print) -> None:
    from bench.floor_app import create_floor_app
    from bench.floor_app import prepare as prepare_floor

    merchants, items = (100, 20) if quick else (1_000, 50)
    rounds, seconds = (3, 0.5) if quick else (ROUNDS, SECONDS)
    for backend in backends or ["sqlite"]:
        url = _database_url(backend, plugin_workdir())
        echo(f"  {backend}: seeding {merchants} merchants × {items} items")
        app, slugs = _seed(url, merchants, items)
        prepare_floor(url.replace("postgresql+psycopg://", "postgresql://"))
        floor = create_floor_app(url.replace("postgresql+psycopg://", "postgresql://"))
        search, floor_page, cold_search = _operations(app, floor, slugs["large"])

        for _warm in range(10):
            search()
            cold_search()
            floor_page()
        rates = interleaved(
            {"search": search, "cold": cold_search, "floor": floor_page}, rounds, seconds
        )
        results[f"street_search_vs_floor_{backend}"] = round(rates["search"] / rates["floor"], 3)
        results[f"street_search_cold_vs_floor_{backend}"] = round(rates["cold"] / rates["floor"], 3)
        results[f"street_search_per_second_{backend}"] = round(rates["search"], 1)
        results[f"street_search_cold_per_second_{backend}"] = round(rates["cold"], 1)
        results[f"street_floor_page_per_second_{backend}"] = round(rates["floor"], 1)
        results[f"street_search_statements_10_{backend}"] = _statements(app, slugs["small"])
        results[f"street_search_statements_{merchants}_{backend}"] = _statements(
            app, slugs["large"]
        )
        results[f"street_search_statements_cached_{backend}"] = _statements(
            app, slugs["large"], cold=False
        )
        results["street_search_scale"] = f"{merchants} merchants x {items} items"
        with app.app_context():
            from webapp.extensions import db

            db.engine.dispose()
        if backend == "postgres":
            import psycopg

            from bench.run import PG_ADMIN_URL

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
                connection.execute(
                    'DROP DATABASE IF EXISTS "neighbourly_bench_street" WITH (FORCE)'
                )
    results["street_search_method"] = (
        "in-process test client: GET /n/<street>/street?q=латте (full page) vs the floor's 50-row page, "
        "interleaved rounds (search: the same query again, served mostly from the page's per-minute "
        "cache; cold: that cache cleared before every request); uncached statements with ?open=1 at "
        "10 and at the large street"
    )


if __name__ == "__main__":
    import json

    measured: dict = {}
    run(measured, sys.argv[1:] or ["sqlite"], quick=os.environ.get("BENCH_QUICK") == "1")
    print(json.dumps(measured, indent=2))
