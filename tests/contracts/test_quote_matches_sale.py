"""The till's quote comes from the sale's own computation: what the cashier is told is what is recorded."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from plugins.cross_marketing.models import Certificate
from tests.core.test_cashier import sign_in
from tests.kit import enable_plugins
from tests.plugins.cross_marketing.conftest import buy, make_offer, partner
from webapp.errors import PurchaseDeclined
from webapp.extensions import db
from webapp.services.purchases import PurchaseDraft, max_points_for, quote_sale, record_purchase


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.news", "plugins.cross_marketing", "plugins.gamification"],
            "RATELIMIT_ENABLED": False}


@pytest.fixture
def street(make_merchant, make_user):
    """A café with status levels whose certificates the salon next door hands out."""
    cashier = make_user(name="Cafe Cashier")
    cafe = make_merchant(name="Café Lipa", cashback_bp=1000, cashiers=[cashier])
    cafe.cashier = cashier
    salon = make_merchant(name="Salon Aru")
    for merchant, names in ((cafe, ("cross_marketing", "gamification")), (salon, ("cross_marketing",))):
        for name in names:
            enable_plugins(merchant, name)
    partner(cafe, salon, make_offer(cafe, face_value="500"))
    return cafe, salon


def _certificate_for(user_id: int) -> Certificate:
    return db.session.scalar(
        select(Certificate).where(Certificate.holder_id == user_id).order_by(Certificate.id.desc())
    )


def _customer(street, make_user, make_member, give_points, balance: int, prior_spend: int, certificate: str):
    cafe, salon = street
    user = make_user()
    at_cafe = make_member(cafe, user=user)
    if prior_spend:
        buy(cafe, at_cafe, amount=prior_spend)  # lifts the status level from history
    if balance:
        give_points(at_cafe, balance)
    options = {}
    if certificate != "none":
        buy(salon, make_member(salon, user=user))  # the salon hands out a café certificate
        issued = _certificate_for(user.id)
        from plugins.cross_marketing.services import unseal

        options = ({"certificate": unseal(issued.code_sealed)} if certificate == "typed"
                   else {"certificate_id": str(issued.id)})
    db.session.refresh(at_cafe)
    return at_cafe, options


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    amount=st.integers(min_value=100, max_value=2_000_000),
    balance=st.sampled_from([0, 700, 60_000]),
    share=st.floats(min_value=0, max_value=1),
    prior_spend=st.sampled_from([0, 2_000_000, 12_000_000, 60_000_000]),
    certificate=st.sampled_from(["none", "typed", "picked"]),
)
def test_the_quote_equals_the_recorded_sale(
    street, make_user, make_member, give_points, amount, balance, share, prior_spend, certificate
):
    cafe, _salon = street
    membership, options = _customer(street, make_user, make_member, give_points, balance, prior_spend, certificate)
    points = int(max_points_for(cafe, membership, amount) * share)
    key = uuid.uuid4().hex

    def draft():
        return PurchaseDraft(membership_id=membership.id, amount=amount, points_to_use=points,
                             idempotency_key=key, options=dict(options))

    try:
        quoted = quote_sale(db.session, cafe, membership, draft())
    except PurchaseDeclined as refused:
        db.session.rollback()
        with pytest.raises(type(refused), match=re.escape(refused.message)):
            record_purchase(db.session, cafe, membership, draft())
        return
    db.session.rollback()  # what the till's request does when it ends
    purchase = record_purchase(db.session, cafe, membership, draft()).purchase
    assert (quoted.amount_paid, quoted.points_earned, quoted.certificate_value, quoted.discount,
            quoted.rate.basis_points) == (
        purchase.amount_paid, purchase.points_earned, purchase.certificate_value_used,
        purchase.discount, purchase.earn_rate_bp)
    assert quoted.amount_paid == amount - points * cafe.network.point_value_minor - quoted.certificate_value
    if certificate != "none":
        assert purchase.certificate_value_used > 0  # the quote left the certificate for the sale


def test_the_till_shows_what_to_collect_with_a_certificate_before_confirm(
    client, street, make_user, make_member, give_points
):
    cafe, _salon = street
    membership, options = _customer(street, make_user, make_member, give_points, 1000, 0, "typed")
    sign_in(client, cafe.cashier)
    query = {"membership_id": membership.id, "amount": "1000", "points": "10",
             "opt_certificate": options["certificate"]}
    panel = client.get(f"/business/{cafe.slug}/till/quote", query_string=query,
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    to_collect = int(re.search(r'data-amount-paid="(\d+)"', panel).group(1))
    earned = int(re.search(r'data-points-earned="(\d+)"', panel).group(1))
    # 1,000.00 less 10 points (0.10) less the 500.00 certificate: 499.90 to collect, 10 % earned.
    assert (to_collect, earned) == (49_990, 4_999)
    certificate = _certificate_for(membership.user_id)
    db.session.refresh(certificate)
    assert certificate.status == "issued"  # quoting did not use it
    purchase = record_purchase(db.session, cafe, membership, PurchaseDraft(
        membership_id=membership.id, amount=100_000, points_to_use=10, idempotency_key=uuid.uuid4().hex,
        options=dict(options),
    )).purchase
    assert (purchase.amount_paid, purchase.points_earned) == (to_collect, earned)
