"""Public pages: the directory, merchant e-cards, the join QR, and joining by code, link or QR."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import ConsentRecord, Membership, MerchantPhoto
from webapp.plugins import hookimpl
from webapp.services import price_items

XSS = "<script>alert(1)</script>"


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --------------------------------------------------------------------------- directory


def test_directory_lists_only_active_merchants(client, network, make_merchant):
    make_merchant(name="Sunny Bakery", category="bakery")
    make_merchant(name="Pending Pies", status="pending")
    make_merchant(name="Declined Donuts", status="declined")
    make_merchant(name="Suspended Subs", status="suspended")

    for url in ("/", f"/n/{network.slug}/"):
        page = client.get(url).get_data(as_text=True)
        assert "Sunny Bakery" in page
        assert "Pending Pies" not in page
        assert "Declined Donuts" not in page
        assert "Suspended Subs" not in page
        assert "Bakery" in page  # the category tab / group heading


def test_directory_category_filter_and_search(client, network, make_merchant):
    bean = make_merchant(name="Bean There", category="cafe")
    crumb = make_merchant(name="Crumb and Co", category="bakery")
    crumb.description = "Sourdough loaves baked at dawn"
    bean.description = "Espresso and cakes"
    db.session.commit()
    base = f"/n/{network.slug}/"

    bakery = client.get(base + "?category=bakery").get_data(as_text=True)
    assert "Crumb and Co" in bakery and "Bean There" not in bakery
    assert 'aria-current="true"' in bakery

    found = client.get(base + "?q=SOURDOUGH").get_data(as_text=True)
    assert "Crumb and Co" in found and "Bean There" not in found

    by_name = client.get(base + "?q=bean").get_data(as_text=True)
    assert "Bean There" in by_name and "Crumb and Co" not in by_name

    # A search that needs LIKE's wildcards escaped finds nothing rather than everything.
    nothing = client.get(base + "?q=%25").get_data(as_text=True)
    assert "Bean There" not in nothing and "Nothing matches" in nothing

    # The htmx live search gets just the results region, still filtered.
    fragment = client.get(base + "?q=crumb", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert "<html" not in body and 'id="directory-results"' in body
    assert "Crumb and Co" in body and "Bean There" not in body
    assert "HX-Request" in fragment.headers.get("Vary", "")


def test_directory_empty_state_and_network_list(client, make_network, network):
    page = client.get("/").get_data(as_text=True)
    assert "No businesses have joined this neighbourhood yet" in page

    other = make_network(name="Dostyk Street")
    listing = client.get("/").get_data(as_text=True)
    assert network.name in listing and "Dostyk Street" in listing
    assert f"/n/{other.slug}/" in listing
    assert client.get("/n/no-such-street/").status_code == 404


def test_directory_card_shows_photo_or_placeholder(app, client, network, make_merchant):
    with_photo = make_merchant(name="Photo Flowers", category="flowers")
    make_merchant(name="Plain Pharmacy", category="pharmacy")
    folder = Path(app.config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "abc123.webp").write_bytes(b"RIFF0000WEBPVP8 ")
    db.session.add(MerchantPhoto(merchant_id=with_photo.id, filename="abc123.webp", alt_text="Roses"))
    db.session.commit()

    page = client.get("/").get_data(as_text=True)
    assert '/photos/abc123.webp' in page and 'alt="Roses"' in page
    assert "photo-placeholder" in page  # the merchant without photos
    assert client.get("/photos/abc123.webp").status_code == 200
    assert client.get("/photos/unknown.webp").status_code == 404
    assert client.get("/photos/..%2Fsecret_key").status_code == 404


# --------------------------------------------------------------------------- e-card


def test_merchant_card_shows_prices_rules_and_join_code(app, client, make_merchant):
    merchant = make_merchant(name="Salon Aru", category="beauty", cashback_bp=750, max_points_share_pct=30)
    price_items.save_items(db.session, merchant, [
        price_items.ItemRow(None, "Haircut", 450000), price_items.ItemRow(None, "Manicure", 600050),
    ])
    merchant.phone = "+7 701 555 0000"
    db.session.commit()

    response = client.get(f"/m/{merchant.slug}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Haircut" in page and "₸4,500" in page and "₸6,000.50" in page
    assert "7.5%" in page and "30%" in page
    assert merchant.join_code in page
    join_link = f"http://localhost/join/{merchant.join_code}"
    assert f'data-copy="{join_link}"' in page
    assert "<svg" in page  # the inline join QR
    assert "1 Abay Avenue" in page and "Mon-Sun 9:00-21:00" in page
    assert 'href="tel:+77015550000"' in page


@pytest.mark.parametrize("status", ["pending", "declined", "suspended"])
def test_merchant_card_of_inactive_merchant_is_missing(client, make_merchant, status):
    merchant = make_merchant(status=status)
    assert client.get(f"/m/{merchant.slug}").status_code == 404
    assert client.get(f"/m/{merchant.slug}/qr.svg").status_code == 404
    assert client.get(f"/join/{merchant.join_code}").status_code == 404


def test_qr_svg_for_posters(client, make_merchant):
    merchant = make_merchant()
    response = client.get(f"/m/{merchant.slug}/qr.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    body = response.get_data(as_text=True)
    assert body.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in body
    download = client.get(f"/m/{merchant.slug}/qr.svg?download=1")
    assert "attachment" in download.headers["Content-Disposition"]


def test_merchant_text_is_escaped(client, make_merchant):
    merchant = make_merchant(name=XSS)
    merchant.description = "Best " + XSS
    merchant.address = XSS
    price_items.save_items(db.session, merchant, [price_items.ItemRow(None, XSS, 100, XSS)])
    db.session.commit()
    for url in (f"/m/{merchant.slug}", "/", f"/join/{merchant.join_code}"):
        page = client.get(url).get_data(as_text=True)
        assert XSS not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url


# --------------------------------------------------------------------------- joining


def join_consent(client, url, marketing=False):
    data = {"consent": "yes"}
    if marketing:
        data["marketing"] = "yes"
    return client.post_form(url, data)


def test_join_by_code_is_case_insensitive(app, client, make_user, make_merchant):
    merchant = make_merchant(name="Crumb Bakery")
    user = make_user()
    client.login(user)

    found = client.get(f"/join?code={merchant.join_code.lower()[:3]} {merchant.join_code.lower()[3:]}")
    assert found.status_code == 303
    target = found.headers["Location"]
    assert target.endswith(f"/join/{merchant.join_code}?via=code")

    page = client.get(target).get_data(as_text=True)
    assert 'name="consent"' in page and "checked" not in page.split('id="join-form"')[1]

    response = join_consent(client, target, marketing=True)
    assert response.status_code == 303 and response.headers["Location"].endswith("/wallet/")
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
    assert membership.merchant_id == merchant.id and membership.join_source == "code"
    records = db.session.scalars(
        select(ConsentRecord).where(ConsentRecord.user_id == user.id).order_by(ConsentRecord.purpose)
    ).all()
    assert [(r.purpose, r.granted) for r in records] == [("data_processing", True), ("marketing", True)]
    assert all(r.text_version == app.config["CONSENT_TEXT_VERSION"] for r in records)
    assert "Crumb Bakery" in records[0].text

    wallet = client.get("/wallet/").get_data(as_text=True)
    assert "Welcome to Crumb Bakery" in wallet


def test_unknown_code_answers_404_with_a_clear_message(client, make_merchant):
    make_merchant()
    response = client.get("/join/ZZZZZZ")
    assert response.status_code == 404
    assert "ZZZZZZ" in response.get_data(as_text=True)
    assert "could not find this business" in response.get_data(as_text=True)

    typed = client.get("/join?code=zzzzzz")
    assert typed.status_code == 422
    assert "No business in the network uses the code ZZZZZZ" in typed.get_data(as_text=True)
    assert client.get("/join").status_code == 200


@pytest.mark.parametrize(("query", "source"), [("", "link"), ("?via=qr", "qr")])
def test_join_by_link_or_qr(client, make_user, make_merchant, query, source):
    merchant = make_merchant()
    user = make_user()
    client.login(user)
    response = join_consent(client, f"/join/{merchant.join_code.lower()}{query}")
    assert response.status_code == 303
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
    assert membership.join_source == source
    # The marketing box was left unticked: only the data processing consent is stored.
    assert count(ConsentRecord, ConsentRecord.user_id == user.id) == 1


def test_join_without_consent_stores_nothing(client, make_user, make_merchant):
    merchant = make_merchant()
    user = make_user()
    client.login(user)
    response = client.post_form(f"/join/{merchant.join_code}", {"marketing": "yes"})
    assert response.status_code == 422
    assert "agree to the processing of your data" in response.get_data(as_text=True)
    assert count(Membership, Membership.user_id == user.id) == 0
    assert count(ConsentRecord, ConsentRecord.user_id == user.id) == 0


def test_joining_twice_does_not_duplicate(client, make_user, make_merchant):
    merchant = make_merchant(name="Twice Cafe")
    user = make_user()
    client.login(user)
    assert join_consent(client, f"/join/{merchant.join_code}").status_code == 303
    again = client.get(f"/join/{merchant.join_code}")
    assert again.status_code == 303 and again.headers["Location"].endswith("/wallet/")
    assert join_consent(client, f"/join/{merchant.join_code}").status_code == 303
    assert count(Membership, Membership.user_id == user.id) == 1
    assert count(ConsentRecord, ConsentRecord.user_id == user.id) == 1
    assert "already have a card at Twice Cafe" in client.get("/wallet/").get_data(as_text=True)


def test_join_needs_an_account_and_keeps_the_referral(client, make_user, make_merchant):
    merchant = make_merchant()
    page = client.get(f"/join/{merchant.join_code}?ref=FRIEND1&via=qr").get_data(as_text=True)
    back = f"/join/{merchant.join_code}?via=qr&ref=FRIEND1"
    nexts = {
        (urlsplit(html.unescape(href)).path, parse_qs(urlsplit(html.unescape(href)).query).get("next", [""])[0])
        for href in re.findall(r'href="(/auth/[^"]*)"', page)
    }
    assert ("/auth/register", back) in nexts
    assert ("/auth/login", back) in nexts
    assert 'name="consent"' not in page

    anonymous = client.post_form(f"/join/{merchant.join_code}?ref=FRIEND1", {"consent": "yes"})
    assert anonymous.status_code == 303 and "/auth/login?next=" in anonymous.headers["Location"]
    assert count(Membership) == 0

    # Signing in with that ``next`` comes straight back to the join page, referral intact.
    user = make_user()
    signed_in = client.post_form(
        "/auth/login", {"email": user.email, "password": "correct horse battery",
                        "next": f"/join/{merchant.join_code}?via=qr&ref=FRIEND1"},
    )
    assert signed_in.headers["Location"] == f"/join/{merchant.join_code}?via=qr&ref=FRIEND1"


class _ReferralSpy:
    """A throw-away plugin recording the referral code each joining carried."""

    seen: list = []

    @staticmethod
    @hookimpl
    def neighbourly_membership_recorded(merchant, membership, session, referral_code):
        _ReferralSpy.seen.append(referral_code)


def test_referral_code_reaches_the_joining_hooks(app, client, make_user, make_merchant):
    merchant = make_merchant()
    user = make_user()
    client.login(user)
    pm = app.extensions["neighbourly"].pm
    _ReferralSpy.seen = []
    pm.register(_ReferralSpy, name="referral-spy")
    try:
        response = join_consent(client, f"/join/{merchant.join_code}?ref=FRIEND1")
    finally:
        pm.unregister(name="referral-spy")
    assert response.status_code == 303
    assert _ReferralSpy.seen == ["FRIEND1"]


def test_merchant_card_shows_membership_to_members(client, make_user, make_merchant, make_member):
    merchant = make_merchant()
    user = make_user()
    make_member(merchant, user=user, points=1234)
    client.login(user)
    page = client.get(f"/m/{merchant.slug}").get_data(as_text=True)
    assert "You have a card here" in page and "1,234" in page


def test_directory_paginates_in_a_stable_order(app, network, make_merchant):
    from webapp.services import directory

    for letter in "EDCBA":
        make_merchant(name=f"Shop {letter}", category="cafe")
    first = directory.directory_page(db.session, network, per_page=2)
    last = directory.directory_page(db.session, network, page=99, per_page=2)
    assert (first.total, first.pages) == (5, 3)
    assert [m.name for m in first.merchants] == ["Shop A", "Shop B"]
    assert last.page == 3 and [m.name for m in last.merchants] == ["Shop E"]


class _JoinSpy:
    """A throw-away plugin recording every joining it is told about."""

    seen: list = []

    @staticmethod
    @hookimpl
    def neighbourly_membership_recorded(merchant, membership, session, referral_code, rejoined):
        _JoinSpy.seen.append((membership.id, rejoined))


def test_joining_again_after_leaving_reaches_the_hooks_as_a_rejoining(app, make_user, make_merchant):
    from webapp.services.memberships import DATA_PROCESSING, join_merchant, withdraw_consent

    merchant = make_merchant()
    user = make_user()
    pm = app.extensions["neighbourly"].pm
    _JoinSpy.seen = []
    pm.register(_JoinSpy, name="join-spy")
    try:
        first, newly = join_merchant(db.session, user, merchant, consent_given=True, text_version="1")
        assert newly
        join_merchant(db.session, user, merchant, consent_given=True, text_version="1")  # still a member
        withdraw_consent(db.session, user, merchant, DATA_PROCESSING, "1")
        again, newly = join_merchant(db.session, user, merchant, consent_given=True, text_version="1")
    finally:
        pm.unregister(name="join-spy")
    assert again.id == first.id and not newly
    assert again.left_at is None
    assert _JoinSpy.seen == [(first.id, False), (first.id, True)]
