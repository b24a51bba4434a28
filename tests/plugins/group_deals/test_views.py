"""The pages: the owner's drafts with validation in words, publishing, the customer's deal page with its
live region, joining and leaving over HTTP, ideas and votes, figures as CSV, and the plugin switched off."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from plugins.group_deals import services
from plugins.group_deals.models import Deal, Idea, Pledge
from tests.conftest import form_status
from tests.kit import disable_plugins, enable_plugins
from tests.plugins.group_deals.conftest import make_deal
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership
from webapp.models.base import utcnow


def owner_url(shop, tail=""):
    return f"/business/{shop.slug}/deals/{tail}"


def deal_url(shop, deal, tail=""):
    return f"/m/{shop.slug}/deals/{deal.id}{tail}"


def future(days=3):
    return (utcnow() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


FORM = {
    "title": "Sourdough box", "description": "Three loaves <b>a week</b>.", "regular_price": "100",
    "tier1_participants": "2", "tier1_price": "90", "tier2_participants": "3", "tier2_price": "80",
    "tier3_participants": "5", "tier3_price": "70", "max_quantity": "2", "redeem_days": "14",
}


def test_the_owner_creates_edits_and_publishes_a_deal(client, shop):
    client.login(shop.owner)
    response = client.post_form(owner_url(shop, "new"), {**FORM, "deadline": future(), "tier2_price": "95"}, htmx=True)
    assert form_status(response) == 422
    assert "must be lower than the one before" in response.get_data(as_text=True)
    assert db.session.scalar(select(Deal.id)) is None
    response = client.post_form(owner_url(shop, "new"), {**FORM, "deadline": future()})
    assert response.status_code == 303
    deal = db.session.scalar(select(Deal))
    assert deal.status == "draft" and [t.price for t in deal.tiers] == [9000, 8000, 7000]
    assert client.get(owner_url(shop, f"{deal.id}/edit")).status_code == 200
    response = client.post_form(owner_url(shop, f"{deal.id}/edit"), {**FORM, "deadline": future(), "title": "Rye box"})
    assert response.status_code == 303
    assert client.post_form(owner_url(shop, f"{deal.id}/publish")).status_code == 303
    response = client.post_form(owner_url(shop, f"{deal.id}/edit"), {**FORM, "deadline": future(), "title": "Cheat"})
    assert response.status_code == 409 and "can no longer change" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Deal, deal.id).title == "Rye box"


def test_a_photo_goes_through_the_core_upload_checks(client, shop):
    deal = make_deal(shop, publish=False)
    client.login(shop.owner)
    response = client.post_form(owner_url(shop, f"{deal.id}/photo"),
                                {"photo": (io.BytesIO(b"<svg>not a photo</svg>"), "x.png")},
                                content_type="multipart/form-data")
    assert response.status_code == 422 and "not a photo we can use" in response.get_data(as_text=True)
    from PIL import Image

    image = io.BytesIO()
    Image.new("RGB", (40, 30), "orange").save(image, "PNG")
    image.seek(0)
    response = client.post_form(owner_url(shop, f"{deal.id}/photo"), {"photo": (image, "box.png")},
                                content_type="multipart/form-data")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Deal, deal.id).photo_filename.endswith(".jpg")


def test_a_customer_joins_once_and_leaves_on_the_deal_page(client, shop, make_member):
    deal = make_deal(shop, tiers=((2, 9000), (3, 8000)), deadline=utcnow() + timedelta(days=2), now=utcnow())
    member = make_member(shop)
    client.login(member.user)
    page = client.get(deal_url(shop, deal)).get_data(as_text=True)
    assert "2 more people and the deal happens at ₸90." in page
    assert "You buy only if the deal reaches its lowest price, ₸80" in page
    assert 'hx-trigger="every 5s"' in page and "<svg" in page
    for _click in range(2):  # a double click
        assert client.post_form(deal_url(shop, deal, "/join"), {"quantity": "2", "kind": "best"}).status_code == 303
    assert db.session.scalars(select(Pledge)).all()[0].quantity == 2
    db.session.expire_all()
    assert db.session.get(Deal, deal.id).participants == 1
    fragment = client.get(deal_url(shop, deal, "/progress"), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="gd-progress"')
    assert "1 more person and the deal happens at ₸90." in fragment
    response = client.post_form(deal_url(shop, deal, "/join"), {"quantity": "4", "kind": "current"})
    assert response.status_code == 422 and "At most 3 per customer" in response.get_data(as_text=True)
    assert client.post_form(deal_url(shop, deal, "/leave")).status_code == 303
    db.session.expire_all()
    assert db.session.get(Deal, deal.id).participants == 0


def test_bad_joins_get_a_clear_answer_and_write_nothing(client, shop, make_member, make_user):
    deal = make_deal(shop, tiers=((1, 9000), (2, 8000)), max_participants=2, max_quantity=2,
                     deadline=utcnow() + timedelta(days=2), now=utcnow())
    client.login(make_member(shop).user)
    for data, words in (({"quantity": "0"}, "at least 1"), ({"quantity": "9"}, "At most 2 per customer"),
                        ({"quantity": "1", "kind": "cheapest"}, "Choose how you join")):
        response = client.post_form(deal_url(shop, deal, "/join"), data)
        assert response.status_code == 422 and words in response.get_data(as_text=True)
    client.login(make_user())
    response = client.post_form(deal_url(shop, deal, "/join"), {"quantity": "1"})
    assert response.status_code == 409 and "Get the card" in response.get_data(as_text=True)
    draft = make_deal(shop, publish=False)
    assert client.post_form(deal_url(shop, draft, "/join"), {"quantity": "1"}).status_code == 404
    assert db.session.scalars(select(Pledge)).all() == []


def test_the_deal_page_costs_the_same_statements_at_any_size(client, shop, make_member, app):
    deal = make_deal(shop, tiers=((2, 9000), (40, 8000)), deadline=utcnow() + timedelta(days=2), now=utcnow())
    counts = []
    for size in (2, 12):
        while db.session.get(Deal, deal.id).participants < size:
            services.join(db.session, shop, deal.id, make_member(shop).user_id, 1, "current")
            db.session.expire_all()
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get(deal_url(shop, deal)).status_code == 200
            page = len(seen)
            assert client.get(deal_url(shop, deal, "/progress"), headers={"HX-Request": "true"}).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        counts.append((page, len(seen) - page))
    assert counts[0] == counts[1]


def test_switching_the_plugin_off_hides_everything_and_404s(client, shop, make_member):
    deal = make_deal(shop, deadline=utcnow() + timedelta(days=2), now=utcnow())
    member = make_member(shop)
    client.login(member.user)
    assert "Sourdough box" in client.get(f"/m/{shop.slug}").get_data(as_text=True)
    disable_plugins(shop, "group_deals")
    assert "Sourdough box" not in client.get(f"/m/{shop.slug}").get_data(as_text=True)
    assert "Sourdough box" not in client.get("/wallet/").get_data(as_text=True)
    for url in (deal_url(shop, deal), deal_url(shop, deal, "/progress"), f"/m/{shop.slug}/deals/"):
        assert client.get(url).status_code == 404
    assert client.post_form(deal_url(shop, deal, "/join"), {"quantity": "1"}).status_code == 404
    client.login(shop.owner)
    assert client.get(owner_url(shop)).status_code == 404
    assert db.session.scalars(select(Pledge)).all() == []


def test_ideas_votes_answers_and_a_reward_paid_once(client, shop, make_member):
    proposer, voter = make_member(shop), make_member(shop)
    client.login(proposer.user)
    response = client.post_form(f"/m/{shop.slug}/ideas", {"text": "  "})
    assert response.status_code == 422 and "Write what you would like" in response.get_data(as_text=True)
    assert client.post_form(f"/m/{shop.slug}/ideas", {"text": "Rye bread <script>"}).status_code == 303
    idea = db.session.scalar(select(Idea))
    client.login(voter.user)
    for _click in range(2):
        client.post_form(f"/m/{shop.slug}/ideas/{idea.id}/vote", {"vote": "1"})
    db.session.expire_all()
    assert db.session.get(Idea, idea.id).votes == 1
    client.post_form(f"/m/{shop.slug}/ideas/{idea.id}/vote", {"vote": "0"})
    client.post_form(f"/m/{shop.slug}/ideas/{idea.id}/vote", {"vote": "1"})
    db.session.expire_all()
    assert db.session.get(Idea, idea.id).votes == 1
    board = client.get(f"/m/{shop.slug}/deals/").get_data(as_text=True)
    assert "Rye bread &lt;script&gt;" in board and "Take my vote back" in board

    client.login(shop.owner)
    assert client.post_form(owner_url(shop, f"ideas/{idea.id}/answer"), {"answer": "Soon!"}).status_code == 303
    response = client.post_form(owner_url(shop, f"ideas/{idea.id}/deal"),
                                {**FORM, "deadline": future(), "reward_points": "150"})
    assert response.status_code == 303
    deal = db.session.scalar(select(Deal).where(Deal.idea_id == idea.id))
    client.post_form(owner_url(shop, f"{deal.id}/publish"))
    client.post_form(owner_url(shop, f"{deal.id}/publish"))  # a second click: no second reward
    db.session.expire_all()
    rewards = db.session.scalars(select(LedgerEntry).where(LedgerEntry.source == "group_deals")).all()
    assert [(r.membership_id, r.amount) for r in rewards] == [(proposer.id, 150)]
    assert db.session.get(Membership, proposer.id).balance == 150
    assert client.post_form(owner_url(shop, f"ideas/{idea.id}/deal"),
                            {**FORM, "deadline": future()}).status_code == 409


def test_figures_and_a_csv_that_neutralises_formulas(client, shop, make_member):
    deal = make_deal(shop, tiers=((1, 9000), (2, 8000)), deadline=utcnow() + timedelta(days=2), now=utcnow())
    db.session.get(Deal, deal.id).title = "=HYPERLINK(\"http://x\")"
    db.session.commit()
    services.join(db.session, shop, deal.id, make_member(shop).user_id, 1, "current")
    client.get(deal_url(shop, deal))
    client.login(shop.owner)
    page = client.get(owner_url(shop, "figures")).get_data(as_text=True)
    assert "Revenue at the deal price" in page
    response = client.get(owner_url(shop, "figures?format=csv"))
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:5] == ["deal", "status", "deadline", "views", "joined"]
    assert rows[1][0] == "'=HYPERLINK(\"http://x\")" and rows[1][3] == "1" and rows[1][4] == "1"
    assert rows[1][14] == "100"


@pytest.mark.parametrize("path", ["", "new", "figures", "ideas"])
def test_owner_pages_are_for_the_owner_only(client, shop, make_member, path):
    client.login(make_member(shop).user)
    assert client.get(owner_url(shop, path)).status_code == 404


def test_deals_show_on_the_e_card_and_in_the_wallet(client, shop, make_member):
    deal = make_deal(shop, deadline=utcnow() + timedelta(days=2), now=utcnow())
    member = make_member(shop)
    client.login(member.user)
    card = client.get(f"/m/{shop.slug}").get_data(as_text=True)
    assert re.search(rf'href="/m/{shop.slug}/deals/{deal.id}">Sourdough box</a>', card)
    # The wallet's compact card says there is one; the card's page links to it.
    assert "1 group deal open" in client.get("/wallet/").get_data(as_text=True)
    assert f"/m/{shop.slug}/deals/{deal.id}" in client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)


def test_the_directory_has_a_group_deals_section_of_shops_with_the_plugin_on(client, shop, make_merchant):
    deal = make_deal(shop, deadline=utcnow() + timedelta(days=2), now=utcnow())
    other = make_merchant(name="Quiet Shop")
    enable_plugins(other, "group_deals")
    make_deal(other, publish=False)
    page = client.get(f"/n/{shop.network.slug}/").get_data(as_text=True)
    assert 'id="gd-directory-title"' in page
    assert f"/m/{shop.slug}/deals/{deal.id}" in page and page.count("/deals/") == 1
    results = client.get(f"/n/{shop.network.slug}/?q=Corner", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "gd-directory-title" not in results
    disable_plugins(shop, "group_deals")
    assert "gd-directory-title" not in client.get(f"/n/{shop.network.slug}/").get_data(as_text=True)


def test_the_wallet_reads_deals_and_vouchers_once_for_all_cards(client, make_user, make_merchant, make_member):
    customer = make_user()
    shops = [make_merchant() for _ in range(5)]
    for shop in shops:
        enable_plugins(shop, "group_deals")
        make_deal(shop, deadline=utcnow() + timedelta(days=2), now=utcnow())
    for shop in shops[:2]:
        make_member(shop, user=customer)
    client.login(customer)
    shop_ids, customer_id = [shop.id for shop in shops], customer.id

    def statements() -> int:
        db.session.expunge_all()
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            page = client.get("/wallet/").get_data(as_text=True)

        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len([s for s in seen if not s.startswith("BEGIN")]), page.count("1 group deal open")

    client.get("/wallet/")
    two = statements()
    from webapp.models import Merchant, User

    for shop_id in shop_ids[2:]:
        make_member(db.session.get(Merchant, shop_id), user=db.session.get(User, customer_id))
    five = statements()
    assert (two[1], five[1]) == (2, 5)
    assert five[0] == two[0]


def test_a_shared_link_with_a_referral_code_carries_it_to_the_core_joining_page(client, shop, make_user):
    deal = make_deal(shop, deadline=utcnow() + timedelta(days=2), now=utcnow())
    client.login(make_user())
    page = client.get(deal_url(shop, deal, "?ref=ABC234<x>")).get_data(as_text=True)
    assert f'href="/join/{shop.join_code}?ref=ABC234x"' in page
