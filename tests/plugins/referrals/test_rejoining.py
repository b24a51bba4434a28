"""A customer who left and joins again keeps their first referral link and gets no new one."""

from __future__ import annotations

from plugins.referrals import services
from tests.kit import enable_plugins
from tests.plugins.loyalty_kit import join
from webapp.extensions import db
from webapp.models import Membership
from webapp.services.memberships import DATA_PROCESSING, withdraw_consent


def test_rejoining_with_a_code_links_nobody(make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals")
    ann = join(cafe, make_user(name="Ann Lee"))
    bob_user = make_user(name="Bob Stone")
    bob = join(cafe, bob_user)
    assert bob.referrer_id is None
    withdraw_consent(db.session, bob_user, cafe, DATA_PROCESSING, "test")
    assert db.session.get(Membership, bob.id).left_at is not None

    again = join(cafe, bob_user, ref=services.ensure_code(db.session, ann))

    assert again.id == bob.id
    refreshed = db.session.get(Membership, bob.id)
    assert refreshed.left_at is None
    assert refreshed.referrer_id is None
    assert services.friends_of(db.session, ann) == []
