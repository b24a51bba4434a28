"""The news plugin: posts with safe text and links, owner-only pages, e-card, wallet and dashboard."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import select

from plugins.news import services
from plugins.news.models import NewsPost
from tests.conftest import form_status
from tests.kit import disable_plugins, enable_plugins
from webapp.errors import NotFound, ValidationFailed
from webapp.extensions import db
from webapp.plugins import hooks_for, registry, sorted_by_order
from webapp.services import merchants as merchant_service
from webapp.templating import slot

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def shop(make_merchant, make_user):
    cashier = make_user(name="Cashier")
    merchant = make_merchant(name="Corner Bakery", cashiers=[cashier])
    merchant.cashier = cashier
    enable_plugins(merchant, "news")
    return merchant


def news_url(merchant, suffix: str = "") -> str:
    return f"/business/{merchant.slug}/news/{suffix}"


def write(merchant, title="Fresh bread", body="Warm from 7 am.", link="", days_ago=0) -> NewsPost:
    post = services.create_post(db.session, merchant, merchant.owner, title, body, link)
    if days_ago:
        post.published_at = post.published_at - timedelta(days=days_ago)
        db.session.commit()
    return post


def toggle(merchant, on: bool) -> None:
    (enable_plugins if on else disable_plugins)(merchant, "news")


# --------------------------------------------------------------------------- the service


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>", "ftp://example.com/x",
        "//evil.example/x", "/relative/path", "https://", "http://exa mple.com", "example.com",
        "https://example.com/\x00", "https://" + "a" * 500 + ".com",
    ],
)
def test_only_complete_http_links_are_accepted(link):
    with pytest.raises(ValidationFailed) as caught:
        services.clean_post("Title", "Body", link)
    assert "link" in caught.value.details["errors"]


def test_post_fields_are_cleaned_and_limited():
    data = services.clean_post("  Big   sale ", "Line one\r\nLine two\r\n", " https://example.com/sale?x=1 ")
    assert data == services.PostInput("Big sale", "Line one\nLine two", "https://example.com/sale?x=1")
    assert services.clean_post("T", "x" * 1000, "").body == "x" * 1000
    # Browsers send CRLF; 500 lines of "x" are 999 characters as the customer sees them.
    assert len(services.clean_post("T", "\r\n".join(["x"] * 500), "").body) == 999
    with pytest.raises(ValidationFailed) as caught:
        services.clean_post("", "x" * 1001, "javascript:void(0)")
    assert set(caught.value.details["errors"]) == {"title", "body", "link"}
    with pytest.raises(ValidationFailed):
        services.clean_post("x" * 121, "Body", "")


def test_posts_are_scoped_to_their_merchant(shop, make_merchant):
    other = make_merchant(name="Car Wash")
    post = write(shop)
    with pytest.raises(NotFound):
        services.get_post(db.session, other, post.id)
    with pytest.raises(NotFound):
        services.update_post(db.session, other, post.id, "Hijacked", "Body", "")
    with pytest.raises(NotFound):
        services.delete_post(db.session, other, post.id)
    assert db.session.get(NewsPost, post.id).title == "Fresh bread"


def test_latest_posts_come_newest_first(shop):
    old = write(shop, title="Old", days_ago=3)
    new = write(shop, title="New")
    middle = write(shop, title="Middle", days_ago=1)
    assert [p.id for p in services.latest_posts(db.session, shop.id, 2)] == [new.id, middle.id]
    assert services.count_posts(db.session, shop.id) == 3
    assert old.id not in [p.id for p in services.latest_posts(db.session, shop.id, 2)]


def test_erasing_an_author_keeps_the_post_but_not_the_link_to_them(shop):
    post = write(shop)
    registry().pm.hook.neighbourly_customer_erased(user=shop.owner, session=db.session)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(NewsPost, post.id).created_by_id is None
    sections = registry().pm.hook.neighbourly_collect_customer_data(user=shop.owner)
    assert [section for section in sections if section.source == "news"] == []


# --------------------------------------------------------------------------- the owner's pages


def test_owner_writes_edits_and_deletes_posts(client, shop):
    client.login(shop.owner)
    page = client.get(news_url(shop))
    assert page.status_code == 200
    assert "No posts yet" in page.get_data(as_text=True)

    response = client.post_form(news_url(shop), {"title": "Holiday hours", "body": "Closed on Monday.\nOpen Tuesday.",
                                                 "link": "https://example.com/hours"})
    assert response.status_code == 303
    post = db.session.scalar(select(NewsPost).where(NewsPost.merchant_id == shop.id))
    assert post.title == "Holiday hours" and post.created_by_id == shop.owner.id
    listing = client.get(news_url(shop)).get_data(as_text=True)
    assert "Your post is published." in listing and "Holiday hours" in listing

    edit_page = client.get(news_url(shop, f"{post.id}/edit"))
    assert edit_page.status_code == 200 and "Closed on Monday." in edit_page.get_data(as_text=True)
    response = client.post_form(news_url(shop, f"{post.id}/edit"), {"title": "New hours", "body": "Open daily."})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(NewsPost, post.id).title == "New hours"
    assert db.session.get(NewsPost, post.id).link == ""

    assert client.post_form(news_url(shop, f"{post.id}/delete")).status_code == 303
    assert db.session.get(NewsPost, post.id) is None


def test_invalid_posts_answer_422_with_the_form_and_write_nothing(client, shop):
    client.login(shop.owner)
    response = client.post_form(news_url(shop), {"title": "", "body": "x" * 1001, "link": "javascript:alert(1)"},
                                htmx=True)
    assert form_status(response) == 422
    body = response.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith("<form")
    assert body.count('aria-invalid="true"') == 3
    assert "At most 1000 characters; this has 1001." in body
    assert "starting with https://" in body
    assert db.session.scalar(select(NewsPost.id)) is None

    post = write(shop)
    response = client.post_form(news_url(shop, f"{post.id}/edit"), {"title": "Ok", "body": "", "link": ""})
    assert response.status_code == 422
    assert "<html" in response.get_data(as_text=True)  # without htmx: the whole page
    db.session.expire_all()
    assert db.session.get(NewsPost, post.id).body == "Warm from 7 am."


def test_cashiers_and_other_merchants_get_404(client, shop, make_merchant):
    post = write(shop)
    client.login(shop.cashier)
    assert client.get(news_url(shop)).status_code == 404
    assert client.post_form(news_url(shop), {"title": "Mine", "body": "x"}).status_code == 404
    client.post_form("/auth/logout")

    other = make_merchant(name="Car Wash")
    toggle(other, True)
    client.login(other.owner)
    assert client.get(news_url(shop)).status_code == 404
    # Another merchant's post id under one's own slug is as missing as a deleted one.
    assert client.get(news_url(other, f"{post.id}/edit")).status_code == 404
    assert client.post_form(news_url(other, f"{post.id}/edit"), {"title": "X", "body": "Y"}).status_code == 404
    assert client.post_form(news_url(other, f"{post.id}/delete")).status_code == 404
    assert db.session.get(NewsPost, post.id).title == "Fresh bread"


def test_pages_answer_404_while_the_plugin_is_off_and_posts_survive(client, shop):
    post = write(shop)
    client.login(shop.owner)
    toggle(shop, False)
    assert client.get(news_url(shop)).status_code == 404
    assert client.post_form(news_url(shop, f"{post.id}/delete")).status_code == 404
    marketplace = client.get(f"/business/{shop.slug}/marketplace").get_data(as_text=True)
    assert news_url(shop) not in marketplace  # no nav link while off
    toggle(shop, True)
    assert db.session.get(NewsPost, post.id) is not None
    page = client.get(news_url(shop)).get_data(as_text=True)
    assert "Fresh bread" in page
    assert f'href="{news_url(shop)}"' in page  # the nav link is back


# --------------------------------------------------------------------------- what customers see


def test_public_page_shows_latest_posts_escaped_with_safe_links(client, shop):
    write(shop, title="Old news", days_ago=5)
    write(shop, title=f"Sale {XSS}", body=f"First line\nSecond line {XSS}", link="https://example.com/a?b=1&c=2")
    response = client.get(f"/m/{shop.slug}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "Sale &lt;script&gt;" in page
    assert re.search(r'<p class="news-body">First line\nSecond line &lt;script&gt;', page)
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow noopener"' in page
    assert "Old news" in page


def test_posts_shown_setting_limits_the_public_list(shop):
    write(shop, title="Older", days_ago=2)
    write(shop, title="Newest")
    merchant_service.save_plugin_settings(
        db.session, registry(), shop, "news", {"posts_shown": "1", "wallet_teaser": "1"}, shop.owner
    )
    with current_app.test_request_context():
        html = str(slot("merchant_page", shop))
    assert "Newest" in html and "Older" not in html


def test_nothing_is_shown_without_posts_or_with_the_plugin_off(shop):
    with current_app.test_request_context():
        assert str(slot("merchant_page", shop)) == ""
        write(shop)
        assert "Fresh bread" in str(slot("merchant_page", shop))
        toggle(shop, False)
        assert str(slot("merchant_page", shop)) == ""


def test_wallet_card_shows_a_teaser_of_the_newest_post(shop, make_member):
    member = make_member(shop)
    write(shop, title="Old", days_ago=1)
    write(shop, title="Croissants are back", body="y" * 400)
    with current_app.test_request_context():
        html = str(slot("wallet_card", shop, membership=member))
        assert "Croissants are back" in html and "Old" not in html
        assert "y" * 400 not in html and "…" in html
        merchant_service.save_plugin_settings(
            db.session, registry(), shop, "news", {"posts_shown": "3"}, shop.owner
        )  # the unticked box switches the teaser off
        assert str(slot("wallet_card", shop, membership=member)) == ""


def test_dashboard_panel_counts_posts(shop):
    write(shop)
    write(shop, title="Second")
    with current_app.test_request_context():
        panels = sorted_by_order(hooks_for(shop).neighbourly_collect_dashboard_panels(merchant=shop))
    assert [panel.key for panel in panels][:1] == ["core"]  # the core's figures come first
    panels = [panel for panel in panels if panel.key == "news"]
    assert len(panels) == 1
    assert '<span class="value">2</span>' in str(panels[0].html)
    assert "Latest: Second" in str(panels[0].html)


def test_the_owner_list_paginates_25_per_page(client, shop):
    for number in range(26):
        write(shop, title=f"Post number {number:02d}", days_ago=26 - number)
    client.login(shop.owner)
    first = client.get(news_url(shop)).get_data(as_text=True)
    assert "Post number 25" in first and "Post number 01" in first and "Post number 00" not in first
    assert "Page 1 of 2" in first
    second = client.get(news_url(shop) + "?page=2").get_data(as_text=True)
    assert "Post number 00" in second and "Post number 25" not in second
    beyond = client.get(news_url(shop) + "?page=99").get_data(as_text=True)
    assert "Page 2 of 2" in beyond


def test_demo_news_fits_the_business_hours(app, make_merchant):
    from plugins.news.demo import add_demo_posts

    wash, bakery = make_merchant(name="Night Wash"), make_merchant(name="Day Bakery")
    wash.opening_hours, bakery.opening_hours = "Open 24 hours, every day", "Daily 7:00–21:00"
    for merchant in (wash, bakery):
        add_demo_posts(db.session, merchant, [])
    titles = {m.name: [p.title for p in services.latest_posts(db.session, m.id, 5)] for m in (wash, bakery)}
    assert "Open at any hour" in titles["Night Wash"] and "Our autumn hours" not in titles["Night Wash"]
    assert "Our autumn hours" in titles["Day Bakery"]
