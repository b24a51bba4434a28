"""core_0011 backfills the per-card monthly totals from the purchases already recorded, in the
network's months: downgraded and upgraded again, it writes exactly the rows the sales wrote."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from flask_migrate import downgrade, upgrade
from sqlalchemy import select

from tests.conftest import PASSWORD, make_app
from tests.contracts.test_migrations import empty_database_url  # noqa: F401  (the fixture)
from webapp.extensions import db
from webapp.models import CustomerMonthTotals
from webapp.services import accounts, memberships, merchants
from webapp.services.purchases import PurchaseDraft, record_purchase, refund_purchase

ROOT = Path(__file__).resolve().parents[2]
SALES = [  # (card, moment, amount, refunded)
    (0, datetime(2026, 10, 31, 19, 30, tzinfo=UTC), 10_000, False),  # 1 November in Almaty
    (0, datetime(2026, 10, 31, 18, 30, tzinfo=UTC), 7_000, False),  # still 31 October there
    (0, datetime(2026, 11, 15, 9, 0, tzinfo=UTC), 3_000, True),
    (1, datetime(2026, 9, 3, 9, 0, tzinfo=UTC), 50_000, False),
    (1, datetime(2026, 9, 20, 9, 0, tzinfo=UTC), 20_000, False),
]


def _rows():
    return sorted(
        db.session.execute(
            select(
                CustomerMonthTotals.membership_id,
                CustomerMonthTotals.month,
                CustomerMonthTotals.join_month,
                CustomerMonthTotals.purchases,
                CustomerMonthTotals.revenue,
            ).where(CustomerMonthTotals.purchases != 0)
        ).all()
    )


def test_the_migration_backfills_what_the_sales_wrote(empty_database_url):  # noqa: F811
    app = make_app(empty_database_url)
    directory = str(ROOT / "migrations")
    with app.app_context():
        upgrade(directory=directory, revision="heads")
        operator = accounts.register_user(db.session, "op@example.com", PASSWORD, "Operator")
        network = merchants.create_network(db.session, "Abay", "KZT", operator, slug="abay")
        network.timezone = "Asia/Almaty"
        owner = accounts.register_user(db.session, "owner@example.com", PASSWORD, "Owner")
        shop = merchants.apply_to_network(
            db.session,
            owner,
            network,
            name="Café",
            category="cafe",
            address="1 Abay Avenue",
            opening_hours="9-21",
            cashback_bp=500,
            max_points_share_pct=50,
        )
        shop.status = "active"
        db.session.commit()
        cards = []
        for number in range(2):
            person = accounts.register_user(
                db.session, f"c{number}@example.com", PASSWORD, f"C {number}"
            )
            card, _new = memberships.join_merchant(
                db.session, person, shop, consent_given=True, text_version="t"
            )
            card.joined_at = datetime(2026, 8, 31, 20, 0, tzinfo=UTC)  # 1 September in Almaty
            db.session.commit()
            cards.append(card)
        for card, moment, amount, refunded in SALES:
            purchase = record_purchase(
                db.session,
                shop,
                cards[card],
                PurchaseDraft(
                    membership_id=cards[card].id,
                    amount=amount,
                    points_to_use=0,
                    idempotency_key=uuid.uuid4().hex,
                    created_at=moment,
                ),
            ).purchase
            if refunded:
                refund_purchase(db.session, shop, purchase.id, owner.id)
        written = _rows()
        assert {
            (row.month.month, row.join_month.month, row.purchases, row.revenue) for row in written
        } == {
            (11, 9, 1, 10_000),
            (10, 9, 1, 7_000),
            (9, 9, 2, 70_000),
        }
        db.session.remove()

        downgrade(directory=directory, revision="core_0010_price_items")  # the revision before core_0011
        upgrade(directory=directory, revision="heads")
        assert _rows() == written
        db.session.remove()
        db.engine.dispose()
