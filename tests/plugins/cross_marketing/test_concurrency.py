"""Certificates under load: 20 threads released by a barrier, repeated, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from plugins.cross_marketing import services
from plugins.cross_marketing.models import Certificate, CertificateEvent, HolderCount, Offer
from tests.concurrency import race as shared_race
from tests.plugins.cross_marketing.conftest import buy
from webapp.errors import Conflict, NeighbourlyError, NotFound, PurchaseDeclined
from webapp.extensions import db
from webapp.models import Membership, Merchant
from webapp.services.purchases import PurchaseDraft, record_purchase

THREADS = 20
ATTEMPTS = 200
REPEATS = 20


pytestmark = pytest.mark.usefixtures("patient_sqlite")


def race(app, work, attempts: int = ATTEMPTS) -> list:
    """Run ``work(thread, attempt)`` ``attempts`` times in all from THREADS threads released together."""
    return shared_race(app, THREADS, work, rounds=attempts // THREADS)


def purchase_in_thread(merchant_id: int, membership_id: int, amount: int = 100_000, **options):
    merchant = db.session.get(Merchant, merchant_id)
    membership = db.session.get(Membership, membership_id)
    draft = PurchaseDraft(
        membership_id=membership_id, amount=amount, points_to_use=0,
        idempotency_key=uuid.uuid4().hex, options=options,
    )
    return record_purchase(db.session, merchant, membership, draft).purchase.certificate_value_used


def test_one_certificate_is_redeemed_exactly_once(app, street, make_member):
    holder = make_member(street.salon)
    at_cafe = make_member(street.cafe, user=holder.user)
    cafe_id, membership_id = street.cafe.id, at_cafe.id
    for _repeat in range(REPEATS):
        buy(street.salon, holder)
        certificate = db.session.scalars(
            select(Certificate).where(Certificate.holder_id == holder.user_id, Certificate.status == "issued")
        ).one()
        code = services.unseal(certificate.code_sealed)
        db.session.commit()  # end the test's transaction: SQLite holds its write lock until then

        outcomes = race(app, lambda thread, attempt: purchase_in_thread(cafe_id, membership_id, certificate=code))

        successes = [o for o in outcomes if not isinstance(o, Exception)]
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert successes == [50_000], successes[:3]
        assert len(errors) == ATTEMPTS - 1
        assert {type(e) for e in errors} <= {services.CertificateRefused}, {repr(e) for e in errors}
        assert {e.message for e in errors} == {"This certificate has already been used."}
        db.session.expire_all()
        assert db.session.get(Certificate, certificate.id).status == "redeemed"
    redeemed = db.session.scalar(
        select(func.count()).select_from(CertificateEvent).where(CertificateEvent.kind == "redeemed")
    )
    assert redeemed == REPEATS


def test_quantity_caps_are_never_exceeded(app, street, make_member):
    total_cap, per_customer = 7, 3
    members = [make_member(street.salon) for _number in range(THREADS)]
    member_ids = [m.id for m in members]
    salon_id = street.salon.id
    for repeat in range(REPEATS // 4):
        offer = db.session.get(Offer, street.offer.id)
        offer.total_cap = offer.issued_count + total_cap
        offer.per_customer_cap = per_customer * (repeat + 1)
        db.session.commit()

        # Threads 0-9 buy for their own customer; threads 10-19 all buy for customer 0.
        outcomes = race(
            app,
            lambda thread, attempt: purchase_in_thread(
                salon_id, member_ids[thread if thread < THREADS // 2 else 0]
            ),
        )
        assert not [o for o in outcomes if isinstance(o, Exception)]
        db.session.expire_all()
        issued = db.session.scalar(select(func.count()).select_from(Certificate))
        assert issued == total_cap * (repeat + 1)
        assert db.session.get(Offer, street.offer.id).issued_count == issued
        per_holder = dict(
            db.session.execute(
                select(Certificate.holder_id, func.count()).group_by(Certificate.holder_id)
            ).all()
        )
        assert max(per_holder.values()) <= per_customer * (repeat + 1)
        counters = dict(db.session.execute(select(HolderCount.user_id, HolderCount.issued)).all())
        assert counters == per_holder


def test_daily_cap_is_never_exceeded(app, street, make_member):
    services.set_rule(db.session, street.salon, street.partnership.id, {"max_per_day": "5"})
    member_ids = [make_member(street.salon).id for _number in range(THREADS)]
    salon_id = street.salon.id
    db.session.commit()
    outcomes = race(app, lambda thread, attempt: purchase_in_thread(salon_id, member_ids[thread]))
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 5


def test_a_gift_and_a_redemption_racing_leave_one_outcome(app, street, make_member, make_user):
    holder = make_member(street.salon)
    at_cafe = make_member(street.cafe, user=holder.user)
    friends = [make_user(name=f"Friend {n}").id for n in range(THREADS // 2)]
    cafe_id, membership_id = street.cafe.id, at_cafe.id
    claimed_count = redeemed_count = 0
    for _repeat in range(REPEATS):
        buy(street.salon, holder)
        certificate = db.session.scalars(
            select(Certificate).where(Certificate.holder_id == holder.user_id, Certificate.status == "issued")
        ).one()
        certificate_id = certificate.id
        code = services.unseal(certificate.code_sealed)
        token = services.create_gift_link(db.session, holder.user_id, certificate_id)
        db.session.commit()

        def work(thread: int, attempt: int):
            if thread % 2:
                return ("redeemed", purchase_in_thread(cafe_id, membership_id, certificate=code))
            services.claim_gift(db.session, friends[thread // 2], token)
            return ("claimed", friends[thread // 2])

        # The race is decided by the first attempts; two per thread keep the 20 rounds quick.
        outcomes = race(app, work, attempts=2 * THREADS)
        successes = [o for o in outcomes if not isinstance(o, Exception)]
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert len(successes) == 1, successes
        assert all(isinstance(e, (PurchaseDeclined, Conflict, NotFound)) for e in errors), {repr(e) for e in errors}
        assert all(isinstance(e, NeighbourlyError) for e in errors)
        db.session.expire_all()
        final = db.session.get(Certificate, certificate_id)
        kind, value = successes[0]
        if kind == "claimed":
            claimed_count += 1
            assert (final.holder_id, final.status) == (value, "issued")
        else:
            redeemed_count += 1
            assert (final.holder_id, final.status) == (holder.user_id, "redeemed")
        assert final.gift_token_hash is None
    events = dict(
        db.session.execute(
            select(CertificateEvent.kind, func.count()).group_by(CertificateEvent.kind)
        ).all()
    )
    assert events.get("transferred", 0) == claimed_count
    assert events.get("redeemed", 0) == redeemed_count
