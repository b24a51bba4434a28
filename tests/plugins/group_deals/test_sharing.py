"""Sharing a deal: a member's share link carries their referral code (from the referrals plugin,
through the core's hooks), and a friend who gets the card through it counts as their referral."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.kit import enable_plugins
from tests.plugins.group_deals.conftest import make_deal
from webapp.extensions import db
from webapp.models import Membership
from webapp.models.base import utcnow
from webapp.services import memberships


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.group_deals", "plugins.referrals"]}


def test_a_friend_who_joins_through_a_shared_deal_is_the_sharers_referral(client, shop, make_member, make_user):
    enable_plugins(shop, "referrals")
    deal = make_deal(shop, deadline=utcnow() + timedelta(days=2), now=utcnow())
    sharer = make_member(shop)
    client.login(sharer.user)
    page = client.get(f"/m/{shop.slug}/deals/{deal.id}").get_data(as_text=True)
    link = re.search(r'<a href="(http://localhost/m/[^"]+\?ref=[0-9A-Z]+)">', page).group(1)

    friend = make_user()
    client.login(friend)
    page = client.get(link.removeprefix("http://localhost")).get_data(as_text=True)
    join = re.search(r'href="(/join/[^"]+\?ref=[0-9A-Z]+)"', page).group(1)
    response = client.post_form(join.replace("&amp;", "&"), {"consent": "yes"})
    assert response.status_code == 303
    joined = memberships.find_membership(db.session, friend.id, shop.id)
    db.session.expire_all()
    assert db.session.get(Membership, joined.id).referrer_id == sharer.id


def test_without_the_referrals_plugin_the_share_link_is_plain(client, shop, make_member):
    deal = make_deal(shop, deadline=utcnow() + timedelta(days=2), now=utcnow())
    client.login(make_member(shop).user)
    page = client.get(f"/m/{shop.slug}/deals/{deal.id}").get_data(as_text=True)
    assert f'<a href="http://localhost/m/{shop.slug}/deals/{deal.id}">' in page
    assert "?ref=" not in page
