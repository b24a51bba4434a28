"""Claims under load: 20 threads released together by a barrier, repeated, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from plugins.offers import services
from plugins.offers.models import OfferClaim
from tests.concurrency import race
from tests.plugins.offers.conftest import SECRET
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, Merchant

THREADS = 20
REPEATS = 10
POINTS = 500

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("patient_sqlite")]


def claim_in_thread(merchant_id: int, offer_id: int, membership_id: int) -> tuple[int, bool]:
    merchant = db.session.get(Merchant, merchant_id)
    membership = db.session.get(Membership, membership_id)
    found, made = services.claim(db.session, merchant, offer_id, membership)
    return found.id, made


def test_twenty_simultaneous_claims_pay_the_points_once(app, shop, make_member):
    member = make_member(shop)
    shop_id, member_id = shop.id, member.id
    for repeat in range(REPEATS):
        offer = services.send_offer(
            db.session,
            shop,
            services.Criteria(),
            services.OfferInput(f"Offer {repeat}", "", "points", POINTS, None, 0),
            shop.owner.id,
            SECRET,
            confirm=True,
        )
        offer_id = offer.id
        db.session.commit()  # end the read: on SQLite an open transaction holds the write lock
        outcomes = race(
            app, THREADS, lambda _thread, _number: claim_in_thread(shop_id, offer_id, member_id)
        )
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert not errors, {repr(e) for e in errors}
        assert len({claim_id for claim_id, _made in outcomes}) == 1
        assert sum(made for _claim_id, made in outcomes) == 1
        db.session.expire_all()
        assert db.session.get(Membership, member_id).balance == POINTS * (repeat + 1)
        assert (
            db.session.scalar(
                select(func.count()).select_from(OfferClaim).where(OfferClaim.offer_id == offer_id)
            )
            == 1
        )
        paid = db.session.scalar(
            select(func.sum(LedgerEntry.amount)).where(
                LedgerEntry.membership_id == member_id, LedgerEntry.source == "offers"
            )
        )
        assert paid == POINTS * (repeat + 1)
        db.session.commit()
