"""The pages: the segment builder with its live size, sending with the repeat question, the report,
the customer's "For you" in the wallet and the claim over HTTP, and the plugin switched off."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from plugins.offers.models import OfferClaim, SegmentOffer
from tests.kit import disable_plugins
from webapp.extensions import db
from webapp.models import Membership
from webapp.models.base import utcnow


def owner_url(shop, tail=""):
    return f"/business/{shop.slug}/offers/{tail}"


def quiet_members(shop, make_member, count=3, days=90):
    members = [make_member(shop) for _ in range(count)]
    for member in members:
        member.joined_at = utcnow() - timedelta(days=days)
    db.session.commit()
    return members


FORM = {
    "idle_days": "60",
    "title": "We miss you",
    "message": "Coffee on us <b>this week</b>.",
    "kind": "points",
    "points": "300",
    "control_percent": "0",
    "action": "send",
}


def test_the_size_follows_the_form_and_an_empty_segment_says_so(client, shop, make_member):
    quiet_members(shop, make_member, 3)
    make_member(shop)  # joined today: not idle
    client.login(shop.owner)
    page = client.get(owner_url(shop, "new"))
    assert page.status_code == 200 and "4 customers match." in page.get_data(as_text=True)
    live = client.get(
        owner_url(shop, "size"), query_string={"idle_days": "60"}, headers={"HX-Request": "true"}
    )
    body = live.get_data(as_text=True)
    assert live.status_code == 200 and "3 customers match." in body and "<html" not in body
    nobody = client.get(
        owner_url(shop, "size"),
        query_string={"idle_days": "60", "birthday_month": "2"},
        headers={"HX-Request": "true"},
    )
    assert "This segment matches nobody." in nobody.get_data(as_text=True)
    whole = client.get(owner_url(shop, "size"), query_string={"idle_days": "60"})
    assert whole.status_code == 200 and 'id="offer-form"' in whole.get_data(as_text=True)
    assert 'value="60"' in whole.get_data(as_text=True)
    bad = client.get(
        owner_url(shop, "size"), query_string={"idle_days": "-1"}, headers={"HX-Request": "true"}
    )
    assert bad.status_code == 200 and "Fix the conditions" in bad.get_data(as_text=True)

    refused = client.post_form(owner_url(shop, "new"), {**FORM, "birthday_month": "2"})
    assert refused.status_code == 422
    assert "This segment matches nobody: change the conditions before sending." in refused.get_data(
        as_text=True
    )
    assert db.session.scalar(select(func.count()).select_from(SegmentOffer)) == 0


def test_sending_twice_in_a_day_asks_first_then_the_report(client, shop, make_member):
    quiet_members(shop, make_member, 3)
    client.login(shop.owner)
    sent = client.post_form(owner_url(shop, "new"), FORM)
    assert sent.status_code == 303
    again = client.post_form(owner_url(shop, "new"), FORM)
    assert again.status_code == 409
    assert "already got an offer in the last 24 hours" in again.get_data(as_text=True)
    assert 'name="confirm"' in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(SegmentOffer)) == 1
    confirmed = client.post_form(owner_url(shop, "new"), {**FORM, "confirm": "yes"})
    assert confirmed.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(SegmentOffer)) == 2
    report = client.get(confirmed.headers["Location"])
    text = report.get_data(as_text=True)
    assert (
        report.status_code == 200 and "Control group (got nothing)" in text and "brought in" in text
    )


def test_bad_offer_input_answers_422_in_words(client, shop, make_member):
    quiet_members(shop, make_member, 1)
    client.login(shop.owner)
    for changes, words in (
        ({"points": "0"}, "whole number of points"),
        ({"title": ""}, "Give the offer a title"),
        ({"kind": "cash"}, "Choose what the offer gives"),
        ({"message": "x" * 1001}, "At most 1000 characters"),
        ({"control_percent": "90"}, "from 0 to 50 percent"),
        ({"kind": "certificate"}, "Choose a neighbour&#39;s certificate"),
    ):
        answer = client.post_form(owner_url(shop, "new"), {**FORM, **changes})
        assert answer.status_code == 422, changes
        assert words in answer.get_data(as_text=True), changes
    no_csrf = client.post(owner_url(shop, "new"), data=FORM)
    assert no_csrf.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(SegmentOffer)) == 0


def test_a_customer_sees_it_under_for_you_and_takes_it_once(client, shop, make_member, make_user):
    member = quiet_members(shop, make_member, 1)[0]
    client.login(shop.owner)
    client.post_form(owner_url(shop, "new"), FORM)
    offer = db.session.scalar(select(SegmentOffer))
    client.post_form("/auth/logout")
    client.login(member.user)
    wallet = client.get("/wallet/").get_data(as_text=True)
    assert "1 offer for you" in wallet
    card = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
    assert "For you" in card and "We miss you" in card
    page = client.get(f"/m/{shop.slug}/offers/{offer.id}")
    text = page.get_data(as_text=True)
    assert (
        page.status_code == 200
        and "&lt;b&gt;this week&lt;/b&gt;" in text
        and "<b>this week" not in text
    )
    for _attempt in range(2):
        taken = client.post_form(f"/m/{shop.slug}/offers/{offer.id}/claim")
        assert taken.status_code == 303
    db.session.expire_all()
    assert db.session.get(Membership, member.id).balance == 300
    assert db.session.scalar(select(func.count()).select_from(OfferClaim)) == 1
    assert "offer for you" not in client.get("/wallet/").get_data(as_text=True)

    # Someone else, and a member outside the segment, find nothing.
    stranger = make_member(shop)
    client.post_form("/auth/logout")
    client.login(stranger.user)
    assert client.get(f"/m/{shop.slug}/offers/{offer.id}").status_code == 404
    assert client.post_form(f"/m/{shop.slug}/offers/{offer.id}/claim").status_code == 404


def test_the_pages_answer_404_when_the_plugin_is_off(client, shop, make_member):
    client.login(shop.owner)
    assert client.get(owner_url(shop)).status_code == 200
    disable_plugins(shop, "offers")
    assert client.get(owner_url(shop)).status_code == 404
    assert client.get(owner_url(shop, "size")).status_code == 404


def test_a_double_clicked_send_sends_once(client, shop, make_member):
    quiet_members(shop, make_member, 2)
    client.login(shop.owner)
    page = client.get(owner_url(shop, "new")).get_data(as_text=True)
    key = re.search(r'name="form_key" value="([0-9a-f]{32})"', page).group(1)
    first = client.post_form(owner_url(shop, "new"), {**FORM, "form_key": key})
    second = client.post_form(owner_url(shop, "new"), {**FORM, "form_key": key})
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(SegmentOffer)) == 1


def test_the_builder_offers_the_price_list_and_counts_its_buyers(client, shop, make_member, make_merchant):
    from tests.plugins.offers.conftest import buy
    from webapp.services import price_items

    price_items.add_items(db.session, shop, [
        price_items.ItemRow(None, "Latte", 1_000), price_items.ItemRow(None, "Cake <i>", 2_000)
    ], "en")
    other = make_merchant()
    price_items.add_items(db.session, other, [price_items.ItemRow(None, "Their tea", 500)], "en")
    db.session.commit()
    latte, cake = price_items.items_of(db.session, shop)
    theirs = price_items.items_of(db.session, other)[0]
    buyer, _other_member = make_member(shop), make_member(shop)
    buy(shop, buyer, picks=[(latte.id, 1)])
    client.login(shop.owner)
    page = client.get(owner_url(shop, "new")).get_data(as_text=True)
    assert f'<option value="{latte.id}">Latte</option>' in page and "Cake &lt;i&gt;" in page
    assert "Their tea" not in page
    live = client.get(
        owner_url(shop, "size"), query_string={"item_id": str(latte.id), "item_days": "7"},
        headers={"HX-Request": "true"},
    )
    assert "1 customer matches." in live.get_data(as_text=True)
    nobody = client.get(
        owner_url(shop, "size"), query_string={"item_id": str(cake.id), "item_days": "7"},
        headers={"HX-Request": "true"},
    )
    assert "This segment matches nobody." in nobody.get_data(as_text=True)
    foreign = client.get(
        owner_url(shop, "size"), query_string={"item_id": str(theirs.id), "item_days": "7"},
        headers={"HX-Request": "true"},
    )
    assert "Fix the conditions" in foreign.get_data(as_text=True)
