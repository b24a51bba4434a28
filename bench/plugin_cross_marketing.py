"""Checkout with a cross_marketing partnership firing on every purchase, against the bare core.

In-process service calls (``record_purchase`` in a fresh app context per sale, like a request),
not the gunicorn harness: both sides run in the same process, on the same SQLite file, turn by
turn, so the ratio isolates what issuing a certificate adds (cap update, certificate insert,
event insert, the partnership lookup). ``run(results)`` stores
``results["cross_marketing_checkout_vs_core"]`` (goal: at least 0.8) and the raw rates.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.inprocess import plugin_checkouts, plugin_workdir

ROUNDS = 5
SECONDS = 1.5
MEMBERS = 50


def _setup(workdir: Path):
    """An app with one café (issuer), a salon that hands out its certificate, and a plain shop."""
    os.environ.setdefault("NEIGHBOURLY_TASKS_DB", str(workdir / "tasks.db"))
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import StaffRole  # noqa: F401
    from webapp.plugins import registry
    from webapp.services import accounts, memberships
    from webapp.services import merchants as merchant_service

    database = workdir / "cross_marketing.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    app = create_app({
        "DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": "bench-secret-key",
        "PLUGINS": ["plugins.cross_marketing"], "LOAD_ENTRY_POINT_PLUGINS": False,
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
        salon, salon_owner = shop("Salon")
        plain, _plain_owner = shop("Plain")
        for merchant, owner in ((cafe, cafe_owner), (salon, salon_owner)):
            merchant_service.set_plugin_enabled(db.session, registry(), merchant, "cross_marketing", True, owner)
        from plugins.cross_marketing import services

        offer = services.create_offer(db.session, cafe, {"face_value": "500", "validity_days": "30"})
        partnership = services.invite(db.session, cafe, offer.id, salon.id)
        services.respond(db.session, salon, partnership.id, True, {})
        salon_members, plain_members = [], []
        for number in range(MEMBERS):
            user = accounts.register_user(
                db.session, email=f"c{number}@example.com", password="bench password 1", name=f"C {number}"
            )
            salon_members.append(memberships.join_merchant(db.session, user, salon, consent_given=True, text_version="b")[0].id)
            plain_members.append(memberships.join_merchant(db.session, user, plain, consent_given=True, text_version="b")[0].id)
        ids = (salon.id, plain.id, salon_members, plain_members)
        db.session.remove()
    return app, ids


def run(results: dict) -> None:
    """Measure both checkouts turn by turn and store the median ratio in ``results``."""
    workdir = plugin_workdir()
    app, (salon_id, plain_id, salon_members, plain_members) = _setup(workdir)

    from sqlalchemy import func, select

    from plugins.cross_marketing.models import Certificate
    from webapp.extensions import db
    from webapp.models import Membership

    rates = plugin_checkouts(
        app, {"with": (salon_id, salon_members), "core": (plain_id, plain_members)}, ROUNDS, SECONDS,
    )
    with app.app_context():
        issued = db.session.scalar(select(func.count()).select_from(Certificate))
        purchases_with = db.session.scalar(
            select(func.count()).select_from(Membership).where(Membership.merchant_id == salon_id, Membership.visits > 0)
        )
        db.session.remove()
        db.engine.dispose()
    if not issued or not purchases_with:
        raise RuntimeError("the partnership did not fire: the measurement would be meaningless")
    with_rate, core_rate = rates["with"], rates["core"]
    results["cross_marketing_checkout_vs_core"] = round(with_rate / core_rate, 3)
    results["cross_marketing_checkout_per_second"] = round(with_rate, 1)
    results["cross_marketing_core_checkout_per_second"] = round(core_rate, 1)
    results["cross_marketing_certificates_issued"] = issued
    results["cross_marketing_method"] = "in-process record_purchase, SQLite WAL, interleaved rounds"


if __name__ == "__main__":
    import json

    measured: dict = {}
    run(measured)
    print(json.dumps(measured, indent=2))
