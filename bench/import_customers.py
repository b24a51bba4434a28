"""Bench: ``import_100k_seconds``, a customer import of 100,000 generated rows on each backend.

The file is what a shop's previous program would export (name, phone written the local way,
e-mail for some, old card code for some, points, total spent, consent date for some); it is
uploaded, mapped and dry-run once, then imported with ``imports.run`` in committed batches, as
the task queue's worker does. The figure is the import alone (seconds, wall clock); the dry run
is reported beside it. Goal: under 60 s on each backend.

``python -m bench.import_customers [--rows N] [--backends postgres,sqlite]`` runs it alone.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))
GOAL_SECONDS = 60
PG_DATABASE = "neighbourly_bench_import"
MOBILE_PREFIXES = ("700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778")


def generate_csv(rows: int, seed: int = 7) -> bytes:
    """``rows`` distinct customers, semicolon-separated, Windows-1251 (as Russian Excel saves)."""
    rng = random.Random(seed)
    first = ["Айгерим", "Болат", "Дана", "Ерлан", "Жанна", "Марат", "Сауле", "Тимур", "Асель", "Нурлан"]
    last = ["Садыкова", "Ахметов", "Ким", "Нурланова", "Беков", "Иванова", "Жумабаев", "Оспанова"]
    lines = ["ФИО;Телефон;E-mail;Карта;Баллы;Сумма покупок;Согласие"]
    for number in range(rows):
        phone = f"8 {rng.choice(MOBILE_PREFIXES)} {number // 10000:03d} {number % 10000:04d}"
        email = f"client{number}@example.com" if number % 3 == 0 else ""
        card = f"{number:08d}" if number % 2 == 0 else ""
        consent = f"{rng.randrange(1, 28):02d}.{rng.randrange(1, 13):02d}.2023" if number % 4 == 0 else ""
        lines.append(";".join([
            f"{rng.choice(first)} {rng.choice(last)}", phone, email, card, str(rng.randrange(0, 5000)),
            f"{rng.randrange(0, 500000)},{rng.randrange(100):02d}", consent,
        ]))
    return ("\n".join(lines) + "\n").encode("cp1251")


def _database(backend: str, workdir: Path) -> str:
    if backend == "postgres":
        import psycopg

        from bench.run import PG_ADMIN_URL

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        return "postgresql+psycopg://" + PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0] + "/" + PG_DATABASE
    path = workdir / "import.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def _drop(backend: str, workdir: Path) -> None:
    if backend == "postgres":
        import psycopg

        from bench.run import PG_ADMIN_URL

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    else:
        for path in workdir.glob("import.db*"):
            path.unlink(missing_ok=True)


def measure(backend: str, data: bytes, rows: int, workdir: Path) -> dict:
    """Seconds for the dry run and for the import of ``data`` into an empty database."""
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Membership, User
    from webapp.services import imports, ledger, merchants

    url = _database(backend, workdir)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TASKS_IMMEDIATE": True,
                      "MAIL_BACKEND": "locmem"})
    try:
        with app.app_context():
            db.create_all()
            owner = User(email="owner@example.com", name="Owner", card_code="OWNER000001")
            db.session.add(owner)
            db.session.commit()
            network = merchants.create_network(db.session, "Abay Street", "KZT", owner,
                                               timezone="Asia/Almaty", slug="abay")
            shop = merchants.apply_to_network(db.session, owner, network, name="Old Bakery",
                                              category="bakery", cashback_bp=500, max_points_share_pct=50)
            shop.status = "active"
            db.session.commit()

            started = time.perf_counter()
            job = imports.create_upload(db.session, shop, owner, "previous-program.csv", data)
            job = imports.set_mapping(db.session, job, job.mapping)
            check = imports.check(db.session, job.id)
            dry_seconds = time.perf_counter() - started
            if check.create != rows:
                raise RuntimeError(f"the generated file should import {rows} rows, the dry run says "
                                   f"{check.create} ({check.counts})")

            started = time.perf_counter()
            job = imports.run(db.session, job.id)
            import_seconds = time.perf_counter() - started

            members = db.session.query(Membership).filter_by(merchant_id=shop.id).count()
            balanced = ledger.find_balance_mismatches(db.session) == []
            if job.status != "done" or members != rows or not balanced:
                raise RuntimeError(f"{backend}: import {job.status}, {members} cards, balanced={balanced}")
            started = time.perf_counter()
            again = imports.run(db.session, imports.set_mapping(
                db.session, imports.create_upload(db.session, shop, owner, "again.csv", data),
                job.mapping).id)
            again_seconds = time.perf_counter() - started
            if again.created_count or again.skipped_count != rows:
                raise RuntimeError(f"{backend}: the re-import was not a no-op: {again.created_count} created")
            points = job.points_imported
            db.session.remove()
            db.engine.dispose()
    finally:
        _drop(backend, workdir)
    return {"import_seconds": round(import_seconds, 1), "dry_run_seconds": round(dry_seconds, 1),
            "reimport_seconds": round(again_seconds, 1), "rows": rows, "points": points}


def run(results: dict, backends: list[str] | None = None, rows: int = ROWS, echo=print) -> None:
    """Add ``import_100k_seconds`` ({backend: seconds}) and its details to ``results``."""
    from bench.run import postgres_available

    workdir = Path(os.environ.get("BENCH_WORKDIR", Path(tempfile.gettempdir()) / "neighbourly-bench"))
    workdir.mkdir(parents=True, exist_ok=True)
    backends = backends or ["postgres", "sqlite"]
    if "postgres" in backends and not postgres_available():
        backends = [backend for backend in backends if backend != "postgres"]
    data = generate_csv(rows)
    details = {}
    for backend in backends:
        echo(f"  importing {rows:,} customers ({len(data) / 1e6:.1f} MB) on {backend}")
        details[backend] = measure(backend, data, rows, workdir)
        echo(f"    import {details[backend]['import_seconds']} s (goal < {GOAL_SECONDS} s), dry run "
             f"{details[backend]['dry_run_seconds']} s, re-import {details[backend]['reimport_seconds']} s")
    results["import_100k_seconds"] = {backend: figures["import_seconds"] for backend, figures in details.items()}
    results["import_100k_details"] = details
    results.setdefault("goals", {})["import_100k_seconds"] = f"< {GOAL_SECONDS} each"


def main() -> int:
    # The queue picks its storage when webapp is imported: keep it out of the instance folder.
    workdir = Path(os.environ.get("BENCH_WORKDIR", Path(tempfile.gettempdir()) / "neighbourly-bench"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["NEIGHBOURLY_TASKS_DB"] = str(workdir / "tasks.db")
    os.environ.pop("NEIGHBOURLY_REDIS_URL", None)
    parser = argparse.ArgumentParser(prog="python -m bench.import_customers")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--backends", default="postgres,sqlite")
    args = parser.parse_args()
    results: dict = {}
    run(results, [name.strip() for name in args.backends.split(",") if name.strip()], args.rows)
    print(results["import_100k_seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
