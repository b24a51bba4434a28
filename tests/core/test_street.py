"""Find it on the street: search across every active merchant's items, alternatives side by side,
points as the till computes them, filters, "open now" across midnight, bounded input, and a
statement count that does not grow with the street."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from PIL import Image
from sqlalchemy import event

from webapp.extensions import db
from webapp.models import PriceItem
from webapp.rules import points_earned
from webapp.services import hours, price_items, street

# Almaty is UTC+5: 19:30 UTC on Monday 2026-12-07 is 00:30 on Tuesday the 8th there.
MONDAY_NOON_ALMATY = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
TUESDAY_0030_ALMATY = datetime(2026, 12, 7, 19, 30, tzinfo=UTC)
TUESDAY_0230_ALMATY = datetime(2026, 12, 7, 21, 30, tzinfo=UTC)


def _items(merchant, *rows):
    price_items.save_items(db.session, merchant, [price_items.ItemRow(None, *row) for row in rows])


@pytest.fixture
def shops(network, make_merchant):
    network.default_locale = "ru"
    network.timezone = "Asia/Almaty"
    network.point_value_minor = 100  # one point is worth one tenge
    db.session.commit()
    early = make_merchant(name="Early Coffee", cashback_bp=500)
    late = make_merchant(name="Night Owl Coffee", cashback_bp=1000)
    salon = make_merchant(name="Aru Salon", category="beauty", cashback_bp=700)
    hidden = make_merchant(name="Pending Coffee", status="pending")
    _items(
        early,
        ("Латте", 120000, "Кофе"),
        ("Капучино", 110000, "Кофе"),
        ("Круассан", 90000, "Выпечка"),
    )
    _items(late, ("Латте на овсяном", 150000, "Кофе"), ("Американо", 80000, "Кофе"))
    _items(salon, ("Маникюр с покрытием", 700000, "Маникюр"), ("Стрижка мужская", 350000, ""))
    _items(hidden, ("Латте", 50000, "Кофе"))
    hours.save_hours(db.session, early, {day: (8 * 60, 20 * 60) for day in range(7)})
    hours.save_hours(
        db.session, late, {day: (18 * 60, 2 * 60) for day in range(7)}
    )  # after midnight
    hours.save_hours(db.session, salon, {day: (0, 1440) for day in range(5)})  # 24 h on weekdays
    db.session.commit()
    return {"early": early, "late": late, "salon": salon, "hidden": hidden, "network": network}


def _search(shops, query, **kwargs):
    kwargs.setdefault("now", MONDAY_NOON_ALMATY)
    return street.search(db.session, shops["network"], query=query, **kwargs)


def _names(result):
    return [(item.name, item.merchant_name) for group in result.groups for item in group.items]


def test_a_search_finds_items_at_every_active_merchant_with_alternatives_by_price(shops):
    result = _search(shops, "латте")
    assert result.total == 2  # the pending shop's latte is not on the street
    [coffee] = result.groups
    assert coffee.label == "Кофе" and coffee.merchant_count == 2
    # The matches and the rest of the category at every shop, cheapest first.
    assert [(i.name, i.price, i.matched) for i in coffee.items] == [
        ("Американо", 80000, False),
        ("Капучино", 110000, False),
        ("Латте", 120000, True),
        ("Латте на овсяном", 150000, True),
    ]
    latte = coffee.items[2]
    assert latte.merchant_name == "Early Coffee" and latte.cashback_bp == 500
    # Points as the till computes them: 5 % of 1,200 tenge is 60 points of one tenge.
    assert latte.points == points_earned(120000, 500, 100) == 60
    assert coffee.items[3].points == 150


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("маникюра", [("Маникюр с покрытием", "Aru Salon")]),
        ("стрижки", [("Стрижка мужская", "Aru Salon")]),
        ("круас", [("Круассан", "Early Coffee")]),
    ],
)
def test_inflected_forms_and_prefixes(shops, query, expected):
    assert _names(_search(shops, query)) == expected


def test_a_new_network_language_indexes_the_items_again(shops):
    from webapp.services import merchants

    shops["network"].default_locale = "en"  # as if the items had been indexed in English
    price_items.reindex_network(db.session, shops["network"])
    db.session.commit()
    assert _search(shops, "маникюра").groups == []  # no Russian stemming in English
    merchants.set_network_locale(db.session, shops["network"], "ru")
    assert _names(_search(shops, "маникюра")) == [("Маникюр с покрытием", "Aru Salon")]


def test_category_filter_and_facets(shops):
    result = _search(shops, "кофе")  # the category is indexed as well as the name
    assert {name for name, _count in result.categories} == {"Кофе"}
    assert _search(shops, "латте", category="Выпечка").groups == []
    assert _search(shops, "латте", category="кофе").total == 2


def test_open_now_across_midnight(shops):
    at_noon = _search(shops, "латте", open_now=True, now=MONDAY_NOON_ALMATY)
    assert {item.merchant_name for g in at_noon.groups for item in g.items if item.matched} == {
        "Early Coffee"
    }
    after_midnight = _search(shops, "латте", open_now=True, now=TUESDAY_0030_ALMATY)
    assert [(i.name, i.open_now) for g in after_midnight.groups for i in g.items] == [
        ("Американо", True),
        ("Латте на овсяном", True),
    ]
    assert _search(shops, "латте", open_now=True, now=TUESDAY_0230_ALMATY).groups == []
    # The 24-hour salon is open at 00:30 on a weekday.
    assert _search(shops, "маникюр", open_now=True, now=TUESDAY_0030_ALMATY).total == 1


def test_open_now_in_python_and_sql_agree_around_the_clock(shops):
    from sqlalchemy import select

    from webapp.models import Merchant

    network = shops["network"]
    for hour in range(0, 24 * 7, 5):
        moment = datetime(2026, 12, 7, 0, 0, tzinfo=UTC) + timedelta(hours=hour, minutes=30)
        in_sql = set(
            db.session.scalars(
                select(Merchant.name).where(
                    Merchant.network_id == network.id,
                    hours.open_now_condition(Merchant.id, moment, network.timezone),
                )
            )
        )
        in_python = {
            m.name
            for m in (shops["early"], shops["late"], shops["salon"], shops["hidden"])
            if hours.is_open(hours.hours_of(m), moment, network.timezone)
        }
        assert in_sql == in_python, moment


def test_open_now_badge_on_the_public_page_across_midnight(client, shops):
    with time_machine.travel(TUESDAY_0030_ALMATY, tick=False):
        page = client.get(f"/m/{shops['late'].slug}").get_data(as_text=True)
        assert "open now" in page and "18:00–02:00" in page
    with time_machine.travel(TUESDAY_0230_ALMATY, tick=False):
        assert "closed now" in client.get(f"/m/{shops['late'].slug}").get_data(as_text=True)


def test_the_page_searches_without_javascript_and_with_htmx(client, shops):
    url = f"/n/{shops['network'].slug}/street"
    page = client.get(url, query_string={"q": "латте"}).get_data(as_text=True)
    assert "Early Coffee" in page and "Night Owl Coffee" in page and "Pending Coffee" not in page
    assert 'id="street-q"' in page
    fragment = client.get(url, query_string={"q": "латте"}, headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in text and "Night Owl Coffee" in text
    empty = client.get(url, query_string={"q": "велосипед"}).get_data(as_text=True)
    assert "Nothing on the street matches" in empty
    assert "Type what you are looking for" in client.get(url).get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "*",
        "NEAR(a b)",
        "латте OR кофе",
        "-латте",
        "\x00",
        "a" * 5000,
        "'; DROP TABLE price_items; --",
        "латте:*",
        "^",
        "( )",
    ],
)
def test_bad_search_input_never_fails(client, shops, query):
    response = client.get(f"/n/{shops['network'].slug}/street", query_string={"q": query[:1000]})
    assert response.status_code == 200
    assert db.session.query(PriceItem).count() == 8


def test_hand_made_urls_get_a_4xx(client, shops):
    url = f"/n/{shops['network'].slug}/street"
    assert client.get(url, query_string={"q": "a" * 1001}).status_code == 400
    assert client.get(url, query_string={"q": "латте", "category": "x" * 61}).status_code == 400
    assert client.get(url, query_string={"q": "латте", "page": "abc"}).status_code == 200
    assert client.get("/n/no-such-street/street").status_code == 404


def test_pagination(shops, make_merchant):
    for number in range(5):
        _items(make_merchant(name=f"Cafe {number}"), (f"Латте {number}", 100000 + number, "Кофе"))
    first = _search(shops, "латте", per_page=3)
    second = _search(shops, "латте", per_page=3, page=2)
    assert first.total == 7 and first.pages == 3
    seen = [i.item_id for g in first.groups + second.groups for i in g.items if i.matched]
    assert len(seen) == len(set(seen)) == 6
    assert _search(shops, "латте", per_page=3, page=99).page == 3


def _statements(shops, query="латте"):
    seen = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        db.session.expire_all()
        _search(shops, query, open_now=True, now=TUESDAY_0030_ALMATY)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(seen)


def test_statements_per_search_do_not_grow_with_the_street(shops, make_merchant):
    def grow_to(total):
        while len(shops.setdefault("extra", [])) + 3 < total:
            merchant = make_merchant()
            _items(merchant, ("Латте", 100000 + len(shops["extra"]), "Кофе"), ("Чай", 50000, "Чай"))
            hours.save_hours(db.session, merchant, {day: (18 * 60, 2 * 60) for day in range(7)})
            db.session.commit()
            shops["extra"].append(merchant)

    grow_to(3)
    at_three = _statements(shops)
    grow_to(30)
    at_thirty = _statements(shops)
    # The network's row (expired above), the page with its count and facets, the alternatives.
    assert at_three == at_thirty <= 7


# --------------------------------------------------------------------------- the owner's forms


def png_bytes(size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_owner_adds_edits_reorders_and_removes_items_and_search_follows(client, shops):
    merchant = shops["early"]
    client.login(merchant.owner)
    url = f"/business/{merchant.slug}/settings/prices"
    current = price_items.items_of(db.session, merchant)
    ids = [str(item.id) for item in current]
    # Rename the latte, drop the croissant, add a tea; the order is the order of the rows.
    response = client.post_form(
        url,
        {
            "item_id": [ids[1], ids[0], ids[2], ""],
            "item_name": ["Капучино", "Раф", "Круассан", "Чай зелёный"],
            "item_price": ["1100", "1300", "900", "500"],
            "item_category": ["Кофе", "Кофе", "Выпечка", "Чай"],
            "remove": ["2"],
        },
    )
    assert response.status_code == 303
    db.session.expire_all()
    after = price_items.items_of(db.session, merchant)
    assert [(i.name, i.price, i.category) for i in after] == [
        ("Капучино", 110000, "Кофе"),
        ("Раф", 130000, "Кофе"),
        ("Чай зелёный", 50000, "Чай"),
    ]
    assert after[0].id == int(ids[1]) and after[1].id == int(ids[0])  # edited in place
    assert [
        i.merchant_name for g in _search(shops, "латте").groups for i in g.items if i.matched
    ] == ["Night Owl Coffee"]
    assert [
        (i.name, i.merchant_name)
        for g in _search(shops, "раф").groups
        for i in g.items
        if i.matched
    ] == [("Раф", "Early Coffee")]
    assert _search(shops, "круассан").groups == []
    assert _names(_search(shops, "чая")) == [("Чай зелёный", "Early Coffee")]

    # The arrows re-render the rows in the new order without saving.
    moved = client.post_form(
        url,
        {
            "item_id": [str(i.id) for i in after],
            "item_name": [i.name for i in after],
            "item_price": ["1100", "1300", "500"],
            "item_category": ["Кофе", "Кофе", "Чай"],
            "action": "up-2",
        },
    )
    assert moved.status_code == 200
    text = moved.get_data(as_text=True)
    assert text.index('value="Чай зелёный"') < text.index('value="Раф"')
    db.session.expire_all()
    assert [i.name for i in price_items.items_of(db.session, merchant)][2] == "Чай зелёный"


def test_bad_item_rows_get_messages_and_change_nothing(client, shops):
    merchant = shops["early"]
    client.login(merchant.owner)
    url = f"/business/{merchant.slug}/settings/prices"
    before = [(i.id, i.name, i.price) for i in price_items.items_of(db.session, merchant)]
    other_shop_item = price_items.items_of(db.session, shops["late"])[0].id
    for data in (
        {"item_id": [""], "item_name": [""], "item_price": ["100"]},
        {"item_id": [""], "item_name": ["Tea"], "item_price": ["abc"]},
        {"item_id": [""], "item_name": ["Tea"], "item_price": ["-5"]},
        {"item_id": [""], "item_name": ["Tea"], "item_price": ["5"], "item_category": ["x" * 61]},
        {"item_id": [""], "item_name": ["x" * 121], "item_price": ["5"]},
    ):
        response = client.post_form(url, data)
        assert response.status_code == 422, data
        assert 'class="error"' in response.get_data(as_text=True)
    # Another shop's item id is not this shop's: it is treated as a new row, never edited.
    response = client.post_form(
        url, {"item_id": [str(other_shop_item)], "item_name": ["Hijack"], "item_price": ["1"]}
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert price_items.items_of(db.session, shops["late"])[0].name != "Hijack"
    assert before  # the early shop's list was replaced by the one row it sent
    assert [i.name for i in price_items.items_of(db.session, merchant)] == ["Hijack"]


def test_item_photo_is_reencoded_and_bad_uploads_are_refused(client, shops, app):
    merchant = shops["early"]
    client.login(merchant.owner)
    item = price_items.items_of(db.session, merchant)[0]
    url = f"/business/{merchant.slug}/settings/prices/{item.id}/photo"
    refused = client.post_form(
        url,
        {"photo": (io.BytesIO(b"<script>alert(1)</script>"), "x.png")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    assert "photo" in refused.get_data(as_text=True).lower()
    missing = client.post_form(url, {}, content_type="multipart/form-data")
    assert missing.status_code == 422
    db.session.expire_all()
    assert db.session.get(PriceItem, item.id).photo_filename is None
    other = price_items.items_of(db.session, shops["late"])[0]
    foreign = client.post_form(
        f"/business/{merchant.slug}/settings/prices/{other.id}/photo",
        {"photo": (io.BytesIO(png_bytes()), "a.png")},
        content_type="multipart/form-data",
    )
    assert foreign.status_code == 404
    saved = client.post_form(
        url, {"photo": (io.BytesIO(png_bytes()), "a.png")}, content_type="multipart/form-data"
    )
    assert saved.status_code == 303
    db.session.expire_all()
    filename = db.session.get(PriceItem, item.id).photo_filename
    assert filename and filename.endswith(".jpg")
    served = client.get(f"/photos/{filename}")
    assert served.status_code == 200 and served.data[:2] == b"\xff\xd8"
    assert filename in client.get(f"/m/{merchant.slug}").get_data(as_text=True)
    deleted = client.post_form(f"{url}/delete")
    assert deleted.status_code == 303
    assert client.get(f"/photos/{filename}").status_code == 404


def test_owner_edits_hours_with_clear_errors(client, shops):
    merchant = shops["early"]
    client.login(merchant.owner)
    url = f"/business/{merchant.slug}/settings/hours"
    form = {f"opens-{d}": "9:00" for d in range(7)} | {f"closes-{d}": "1:00" for d in range(7)}
    form |= {"closed-6": "on", "opening_hours": "Closed on public holidays"}
    assert client.post_form(url, form).status_code == 303
    db.session.expire_all()
    assert hours.hours_of(merchant) == {d: (540, 60) for d in range(6)}
    assert merchant.opening_hours == "Closed on public holidays"
    bad = dict(form, **{"opens-0": "25:00", "closes-1": "9:00", "opens-2": "abc"})
    response = client.post_form(url, bad)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Enter a time like 9:00." in text and "Opening and closing times are the same" in text
    db.session.expire_all()
    assert hours.hours_of(merchant) == {d: (540, 60) for d in range(6)}  # nothing half-written


# --------------------------------------------------------------------------- the page's cache


def _page_statements(client, url, **query):
    seen = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        text = client.get(url, query_string=query).get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return text, len(seen)


def test_a_repeated_search_is_served_from_the_cache_until_the_catalogue_changes(client, shops):
    url = f"/n/{shops['network'].slug}/street"
    with time_machine.travel(MONDAY_NOON_ALMATY, tick=False):
        first, searched = _page_statements(client, url, q="латте")
        again, cached = _page_statements(client, url, q="латте")
        assert again == first and "1,200" in first
        assert cached == 1 < searched  # only the network's row
        # The owner renames and reprices the latte: the very next search shows it.
        client.login(shops["early"].owner)
        rows = price_items.items_of(db.session, shops["early"])
        response = client.post_form(
            f"/business/{shops['early'].slug}/settings/prices",
            {
                "item_id": [str(item.id) for item in rows],
                "item_name": ["Латте большой", "Капучино", "Круассан"],
                "item_price": ["1250", "1100", "900"],
                "item_category": ["Кофе", "Кофе", "Выпечка"],
            },
        )
        assert response.status_code == 303
        after, statements = _page_statements(client, url, q="латте")
        assert "Латте большой" in after and "1,250" in after and "1,200" not in after
        assert statements > 1
        # A merchant's rename and new hours (through the ORM, as every form does) count too.
        shops["early"].name = "Early Bird Coffee"
        db.session.commit()
        assert "Early Bird Coffee" in client.get(url, query_string={"q": "латте"}).get_data(
            as_text=True
        )
        hours.save_hours(db.session, shops["early"], {})
        db.session.commit()
        page = client.get(url, query_string={"q": "латте", "open": "1"}).get_data(as_text=True)
        assert "Early Bird Coffee" not in page  # no hours: not listed under "open now"


def test_the_cache_keys_on_the_minute_the_filters_and_the_locale(client, shops):
    url = f"/n/{shops['network'].slug}/street"
    with time_machine.travel(MONDAY_NOON_ALMATY, tick=False):
        assert "Night Owl Coffee" not in client.get(
            url, query_string={"q": "латте", "open": "1"}
        ).get_data(as_text=True)
        assert "Night Owl Coffee" in client.get(url, query_string={"q": "латте"}).get_data(
            as_text=True
        )
    with time_machine.travel(TUESDAY_0030_ALMATY, tick=False):  # the same words, later
        page = client.get(url, query_string={"q": "латте", "open": "1"}).get_data(as_text=True)
        assert "Night Owl Coffee" in page and "Early Coffee" not in page
        _text, statements = _page_statements(client, url, q="латте", category="Выпечка")
        assert statements > 1 and "Nothing on the street matches" in _text


def test_the_cache_is_bounded_and_can_be_switched_off(app, client, shops):
    url = f"/n/{shops['network'].slug}/street"
    app.config["STREET_CACHE_SIZE"] = 2
    app.extensions.pop("street_cache", None)
    for word in ("латте", "кофе", "маникюр", "круассан"):
        client.get(url, query_string={"q": word})
    assert len(app.extensions["street_cache"]) == 2
    app.config["STREET_CACHE_SIZE"] = 0
    app.extensions.pop("street_cache", None)
    client.get(url, query_string={"q": "латте"})
    _text, statements = _page_statements(client, url, q="латте")
    assert statements > 1 and len(app.extensions["street_cache"]) == 0


def test_a_rolled_back_write_keeps_the_cache_and_a_committed_one_drops_it(shops):
    from webapp.services import street_cache

    before = street_cache.generation()
    shops["early"].name = "Not saved"
    db.session.flush()
    db.session.rollback()
    assert street_cache.generation() == before
    from sqlalchemy import update

    db.session.execute(  # an ORM-enabled UPDATE statement, no objects flushed
        update(PriceItem).where(PriceItem.merchant_id == shops["early"].id).values(price=1)
    )
    db.session.commit()
    assert street_cache.generation() == before + 1
