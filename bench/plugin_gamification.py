"""Checkout with gamification and referrals on (a three-level referral chain on every purchase).

In-process service calls (``record_purchase`` in a fresh app context per sale, like a request),
not the gunicorn harness: both sides run in the same process, on the same SQLite file, turn by
turn, so the ratio isolates what the two plugins add (level recomputation, badges, three reward
rows and postings under the monthly cap). ``run(results)`` stores
``results["gamification_referrals_checkout_vs_core"]`` (goal: at least 0.8) and the raw rates.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.inprocess import plugin_checkouts, plugin_workdir

ROUNDS = 5
SECONDS = 1.5
MEMBERS = 50


def _setup(workdir: Path):
    """A café with both plugins and a chain of three referrers above every buyer; a plain shop."""
    os.environ.setdefault("NEIGHBOURLY_TASKS_DB", str(workdir / "tasks.db"))
    from sqlalchemy import select

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import MerchantPlugin, StaffRole  # noqa: F401
    from webapp.plugins import registry
    from webapp.services import accounts, memberships
    from webapp.services import merchants as merchant_service

    database = workdir / "gamification.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    app = create_app({
        "DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": "bench-secret-key",
        "PLUGINS": ["plugins.gamification", "plugins.referrals"], "LOAD_ENTRY_POINT_PLUGINS": False,
        "FAST_PASSWORD_HASHING": True,
    })
    with app.app_context():
        db.create_all()
        operator = accounts.register_user(db.session, email="op@example.com", password="bench password 1", name="Op")
        network = merchant_service.create_network(db.session, "Bench Street", "KZT", operator, slug="bench-street")

        def shop(name: str):
            owner = accounts.register_user(
                db.session, email=f"{name.lower()}@example.com", password="bench password 1", name=name
            )
            merchant = merchant_service.apply_to_network(
                db.session, owner, network, name=name, category="cafe", cashback_bp=500,
                max_points_share_pct=50, address="1 Abay Avenue", opening_hours="9-21",
            )
            merchant.status = "active"
            db.session.commit()
            return merchant, owner

        cafe, cafe_owner = shop("Cafe")
        plain, _plain_owner = shop("Plain")
        for name in ("gamification", "referrals"):
            merchant_service.set_plugin_enabled(db.session, registry(), cafe, name, True, cafe_owner)
        row = db.session.scalar(select(MerchantPlugin).where(
            MerchantPlugin.merchant_id == cafe.id, MerchantPlugin.plugin_name == "referrals"))
        row.settings = {**(row.settings or {}), "monthly_cap": 10**9}  # every reward keeps paying
        db.session.commit()
        from plugins.referrals import services as referrals

        def member(number: int, merchant, ref: str | None = None):
            user = accounts.register_user(
                db.session, email=f"c{number}-{merchant.slug}@example.com", password="bench password 1",
                name=f"C {number}",
            )
            return memberships.join_merchant(
                db.session, user, merchant, consent_given=True, text_version="b", referral_code=ref
            )[0]

        top = member(1000, cafe)
        middle = member(1001, cafe, referrals.ensure_code(db.session, top))
        near = member(1002, cafe, referrals.ensure_code(db.session, middle))
        near_code = referrals.ensure_code(db.session, near)
        db.session.commit()
        cafe_members = [member(number, cafe, near_code).id for number in range(MEMBERS)]
        plain_members = [member(number, plain).id for number in range(MEMBERS)]
        ids = (cafe.id, plain.id, cafe_members, plain_members)
        db.session.remove()
    return app, ids


def run(results: dict) -> None:
    """Measure both checkouts turn by turn and store the median ratio in ``results``."""
    workdir = plugin_workdir()
    app, (cafe_id, plain_id, cafe_members, plain_members) = _setup(workdir)

    from sqlalchemy import func, select

    from plugins.referrals.models import Reward
    from webapp.extensions import db

    rates = plugin_checkouts(
        app, {"with": (cafe_id, cafe_members), "core": (plain_id, plain_members)}, ROUNDS, SECONDS,
    )
    with app.app_context():
        rewards = db.session.scalar(select(func.count()).select_from(Reward).where(Reward.depth == 3))
        db.session.remove()
        db.engine.dispose()
    if not rewards:
        raise RuntimeError("no third-level reward was paid: the measurement would be meaningless")
    with_rate, core_rate = rates["with"], rates["core"]
    results["gamification_referrals_checkout_vs_core"] = round(with_rate / core_rate, 3)
    results["gamification_referrals_checkout_per_second"] = round(with_rate, 1)
    results["gamification_referrals_core_checkout_per_second"] = round(core_rate, 1)
    results["gamification_referrals_third_level_rewards"] = rewards
    results["gamification_referrals_method"] = "in-process record_purchase, SQLite WAL, interleaved rounds"


if __name__ == "__main__":
    import json

    measured: dict = {}
    run(measured)
    print(json.dumps(measured, indent=2))
