"""core_0010_price_items: every entry of the old JSON price lists survives as a row (and is
searchable), and free-text opening hours become weekly hours where they parse."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import text

from tests.conftest import make_app
from tests.contracts.test_migrations import empty_database_url  # noqa: F401  (fixture)
from webapp.extensions import db, migrate
from webapp.services import fulltext, hours

ROOT = Path(__file__).resolve().parents[2]
REVISION = "core_0010_price_items"

OLD_LISTS = {
    "Coffee House": [
        {"name": "Латте", "price": 120000},
        {"name": "Капучино большой", "price": 135050},
        {"name": "Espresso", "price": 0},
    ],
    "Salon": [
        {"name": "Маникюр с покрытием", "price": 700000},
        {"name": "Стрижка мужская", "price": 350000},
    ],
    "Empty": [],
    "Odd": [{"name": "  Hand-typed  ", "price": "1500"}, "Bare string", {"name": "", "price": 5}],
}
HOURS = {
    "Coffee House": "Daily 10:00–01:00",
    "Salon": "Mon–Sat 9:00–20:00\nSun 10:00–18:00",
    "Empty": "by appointment",
    "Odd": "",
}


def _migration_module():
    spec = importlib.util.spec_from_file_location(
        "core_0010", ROOT / "migrations" / "versions" / f"{REVISION}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_old_price_lists_become_rows_without_loss(empty_database_url):  # noqa: F811
    app = make_app(empty_database_url)
    with app.app_context():
        script = ScriptDirectory.from_config(migrate.get_config(directory=str(ROOT / "migrations")))
        before = script.get_revision(REVISION).down_revision
        upgrade(directory=str(ROOT / "migrations"), revision=before)
        session = db.session
        session.execute(
            text(
                "INSERT INTO networks (id, name, slug, currency, default_locale, timezone, country, "
                "point_value_minor, description, created_at) VALUES (1, 'Street', 'street', 'KZT', 'ru', "
                "'Asia/Almaty', 'KZ', 1, '', CURRENT_TIMESTAMP)"
            )
        )
        for number, (name, entries) in enumerate(OLD_LISTS.items(), start=1):
            session.execute(
                text(
                    "INSERT INTO merchants (id, network_id, name, slug, category, description, address, "
                    "phone, opening_hours, price_list, status, decline_reason, cashback_bp, "
                    "max_points_share_pct, join_code, created_at) VALUES (:id, 1, :name, :slug, 'cafe', "
                    "'', '', '', :hours, :prices, 'active', '', 500, 50, :code, CURRENT_TIMESTAMP)"
                ),
                {
                    "id": number,
                    "name": name,
                    "slug": f"m{number}",
                    "hours": HOURS[name],
                    "prices": json.dumps(entries),
                    "code": f"CODE{number}",
                },
            )
        session.commit()
        upgrade(directory=str(ROOT / "migrations"), revision=REVISION)
        rows = session.execute(
            text(
                "SELECT merchant_id, name, price, position FROM price_items ORDER BY merchant_id, position"
            )
        ).all()
        assert [tuple(row) for row in rows] == [
            (1, "Латте", 120000, 0),
            (1, "Капучино большой", 135050, 1),
            (1, "Espresso", 0, 2),
            (2, "Маникюр с покрытием", 700000, 0),
            (2, "Стрижка мужская", 350000, 1),
            (4, "Hand-typed", 1500, 0),
            (4, "Bare string", 0, 1),
        ]
        columns = {c["name"] for c in db.inspect(session.connection()).get_columns("merchants")}
        assert "price_list" not in columns
        # The copied items are searchable at once, with stemming.
        for query, name in (
            ("латте", "Латте"),
            ("маникюра", "Маникюр с покрытием"),
            ("стрижки", "Стрижка мужская"),
        ):
            hits = fulltext.search(session, kind="price_item", query=query, language="ru")
            names = [
                session.execute(
                    text("SELECT name FROM price_items WHERE id = :id"), {"id": h.ref_id}
                ).scalar()
                for h in hits
            ]
            assert names == [name], query
        weekly = session.execute(
            text(
                "SELECT merchant_id, weekday, opens, closes FROM merchant_hours ORDER BY merchant_id, weekday"
            )
        ).all()
        assert [tuple(r) for r in weekly if r[0] == 1] == [(1, day, 600, 60) for day in range(7)]
        assert [tuple(r) for r in weekly if r[0] == 2][5:] == [(2, 5, 540, 1200), (2, 6, 600, 1080)]
        assert not [r for r in weekly if r[0] in (3, 4)]  # unparsed text stays a note only
        assert (
            session.execute(text("SELECT opening_hours FROM merchants WHERE id = 3")).scalar()
            == "by appointment"
        )
        session.remove()
        db.engine.dispose()


def test_the_migration_reads_hours_like_the_service():
    module = _migration_module()
    samples = [
        "Mon–Sat 9:00–20:00\nSun 10:00–18:00",
        "Daily 10:00–01:00",
        "Open 24 hours, every day",
        "9-21",
        "Mon–Fri 9:00–20:00, Sat 10:00–18:00",
        "Sat, Sun 10-18",
        "Пн-Пт 9:00-18:00; Сб 10-16",
        "by appointment",
        "",
        "Daily 7:00–24:00",
        "25-26",
        "Mon-Fri 9-18 lunch 13-14",
    ]
    for sample in samples:
        assert module.parse_text(sample) == hours.parse_text(sample), sample
