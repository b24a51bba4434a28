"""POST /api/v1/purchases under gunicorn against the bare insert endpoint, same database.

The same gunicorn settings, load loop and interleaved rounds as ``bench.checkout``; the POS sends
JSON with an API key and a fresh Idempotency-Key per sale, as docs/pos-integration.md shows.
"""

from __future__ import annotations

import json
import statistics
import uuid

from bench.checkout import Request, Server, against_floor, send
from bench.seed import SeedInfo

SECRET_KEY = "bench-secret-key"  # noqa: S105 - the bench's own throw-away site


def make_key(info: SeedInfo) -> str:
    """A till key for the measured merchant, hashed as the served site will check it."""
    from sqlalchemy import select

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Merchant
    from webapp.services import api_keys

    app = create_app({"DATABASE_URL": info.database_url, "SECRET_KEY": SECRET_KEY})
    with app.app_context():
        merchant = db.session.scalar(select(Merchant).where(Merchant.slug == info.merchant_slug))
        secret = api_keys.create_key(
            db.session, merchant, name="bench POS", scope="till", created_by_id=None,
            hash_key=app.config["CODE_HASH_KEY"],
        ).secret
        db.session.remove()
        db.engine.dispose()
    return secret


def measure(info: SeedInfo, env: dict[str, str], rounds: int, seconds: float) -> dict:
    """API purchase and floor rates (median of interleaved rounds) and their ratio."""
    from bench.floor_app import prepare

    prepare(info.database_url)
    secret = make_key(info)
    app_env = {
        "NEIGHBOURLY_DATABASE_URL": info.database_url, "NEIGHBOURLY_SECRET_KEY": SECRET_KEY,
        # One POS key sends every sale here: the per-key limit is not what is measured.
        "NEIGHBOURLY_API_RATE_LIMIT": "1000000 per minute", **env,
    }
    neighbourly = Server("webapp:create_app()", app_env)
    floor = Server("bench.floor_app:create_floor_app()", {"BENCH_DATABASE_URL": info.database_url, **env})
    members = info.checkout_members
    try:
        def purchase(number: int) -> Request:
            body = {
                "membership_id": members[number % len(members)], "amount": 450_000,
                "points_to_use": 100 if number % 4 == 0 else 0,
            }
            headers = {
                "Authorization": f"Bearer {secret}", "Idempotency-Key": uuid.uuid4().hex,
                "Content-Type": "application/json",
            }
            return "POST", "/api/v1/purchases", json.dumps(body).encode(), headers

        status, _headers, body, _cookies = send(neighbourly.port, purchase(0))
        if status != 201:
            raise RuntimeError(f"the API answered {status}: {body[:300]!r}")
        api_runs, floor_runs = against_floor(neighbourly.port, purchase, 201, floor.port, rounds, seconds)
    finally:
        neighbourly.stop()
        floor.stop()
    api_rate = statistics.median(run.rate for run in api_runs)
    floor_rate = statistics.median(run.rate for run in floor_runs)
    return {
        "api_rate": api_rate,
        "floor_rate": floor_rate,
        "ratio": api_rate / floor_rate,
        "api_requests": sum(run.requests for run in api_runs),
        "api_failures": sum(run.failures for run in api_runs),
        "floor_failures": sum(run.failures for run in floor_runs),
    }
