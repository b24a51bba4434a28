"""The nightly expiry task over the large seeded set: ``python -m bench.points_expiry INFO.json``.

The seeded credits are given the expiry "3 months after earned" (one set-based UPDATE, not
measured: in production each credit gets it in its own INSERT), then ``run_expiry`` is timed
as the nightly task runs it. About half of the 182 days of history is due, so most cards with
points expire something. The books must still balance afterwards (ledger == balance).
Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sqlalchemy import text

from bench.seed import SeedInfo, check_books
from webapp import create_app
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.services import points

EXPIRY_DAYS = 91


def give_credits_an_expiry() -> None:
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        statement = f"UPDATE ledger_entries SET expires_at = created_at + interval '{EXPIRY_DAYS} days' WHERE amount > 0"
    else:
        statement = (f"UPDATE ledger_entries SET expires_at = datetime(created_at, '+{EXPIRY_DAYS} days') "
                     "WHERE amount > 0")
    db.session.execute(text(statement))
    db.session.execute(text("UPDATE merchants SET points_expiry_mode = 'earned', points_expiry_months = 3"))
    db.session.commit()
    if dialect == "postgresql":
        db.session.execute(text("ANALYZE ledger_entries"))
        db.session.commit()


def measure(info: SeedInfo) -> dict:
    app = create_app({"DATABASE_URL": info.database_url, "SECRET_KEY": "bench-secret-key"})
    with app.app_context():
        give_credits_an_expiry()
        now = utcnow()
        started = time.perf_counter()
        expired = points.run_expiry(db.session, now)
        seconds = time.perf_counter() - started
        again = points.run_expiry(db.session, now)  # a second run finds nothing left
        cards = db.session.execute(text("SELECT count(DISTINCT membership_id) FROM ledger_entries WHERE kind = 'expire'")).scalar()
        db.session.remove()
        db.engine.dispose()
    books = check_books(info.database_url)
    if again or not all(books.values()):
        raise RuntimeError(f"expiry left the books wrong: second run {again}, {books}")
    return {"seconds": round(seconds, 2), "points_expired": int(expired), "cards_expired": int(cards)}


if __name__ == "__main__":
    print(json.dumps(measure(SeedInfo.load(Path(sys.argv[1])))), flush=True)
