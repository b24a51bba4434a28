"""The floor: a bare Flask app doing the least a request can do against the same database.

``POST /floor`` inserts one ORM row and commits; ``GET /page`` reads 50 rows and renders them
with Jinja. Neighbourly's checkout and pages are measured against these. The database settings
are the app's own (importing ``webapp.extensions`` installs its SQLite WAL/``BEGIN IMMEDIATE``
connection hooks), so the comparison is about the work per request, not the engine setup.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Flask, render_template, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import webapp.extensions  # noqa: F401 - the same SQLite connection settings as the app

PAGE_ROWS = 50


class _Base(DeclarativeBase):
    pass


floor_db = SQLAlchemy(model_class=_Base)


class FloorRow(floor_db.Model):
    """One sale-like row: enough columns to be a fair single insert."""

    __tablename__ = "bench_floor_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    amount: Mapped[int] = mapped_column()
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))


def engine_url(database_url: str) -> str:
    if database_url.startswith("postgresql://"):
        return "postgresql+psycopg://" + database_url[len("postgresql://") :]
    return database_url


def create_floor_app(database_url: str | None = None) -> Flask:
    app = Flask(__name__)  # templates/floor_page.html: compiled once, cached like the app's
    app.config["SQLALCHEMY_DATABASE_URI"] = engine_url(database_url or os.environ["BENCH_DATABASE_URL"])
    floor_db.init_app(app)

    @app.post("/floor")
    def insert_row():
        floor_db.session.add(
            FloorRow(amount=int(request.form.get("amount", "1")), note=request.form.get("note", "")[:200])
        )
        floor_db.session.commit()
        return "ok"

    @app.get("/page")
    def page():
        rows = floor_db.session.scalars(select(FloorRow).order_by(FloorRow.id.desc()).limit(PAGE_ROWS)).all()
        return render_template("floor_page.html", rows=rows)

    return app


def prepare(database_url: str) -> None:
    """Create the floor table with enough rows for the page (run once, before any server)."""
    app = create_floor_app(database_url)
    with app.app_context():
        floor_db.create_all()
        if floor_db.session.scalar(select(FloorRow.id).limit(1)) is None:
            floor_db.session.add_all(FloorRow(amount=1000 * n, note=f"row {n}") for n in range(PAGE_ROWS))
            floor_db.session.commit()
        floor_db.session.remove()
        floor_db.engine.dispose()
