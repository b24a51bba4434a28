"""FAQ answers found while the customer types: inflected Russian and English forms (the core's
full-text service, SQLite FTS5 and PostgreSQL tsvector), only the merchant's own entries, the htmx
fragment and the no-JavaScript page, and picks counted."""

from __future__ import annotations

import pytest

from plugins.concierge import services
from tests.kit import enable_plugins
from webapp.extensions import db

pytest.importorskip("webapp.services.fulltext")


@pytest.fixture
def faq(shop):
    entries = {
        "delivery": services.save_faq(
            db.session,
            shop,
            "Вы доставляете заказы?",
            "Да, доставка по району занимает около часа.",
            "ru",
        ),
        "cakes": services.save_faq(
            db.session,
            shop,
            "Можно заказать торт с надписью?",
            "Да, торты с надписью делаем за два дня.",
            "ru",
        ),
        "parking": services.save_faq(
            db.session, shop, "Where can I park?", "Parking spaces are behind the building.", "en"
        ),
    }
    return entries


@pytest.mark.parametrize(
    ("query", "language", "expected"),
    [
        ("доставка", "ru", "delivery"),
        ("доставкой заказов", "ru", "delivery"),
        ("торта", "ru", "cakes"),
        ("тортов с надписями", "ru", "cakes"),
        ("Когда вы доставите мой заказ?", "ru", "delivery"),
        ("parked", "en", "parking"),
        ("parking space", "en", "parking"),
        ("Is there a space where I could be parking my car?", "en", "parking"),
    ],
)
def test_inflected_forms_find_the_entry(shop, faq, query, language, expected):
    found = services.faq_matches(db.session, shop, query, [language, "ru"])
    assert found and found[0].id == faq[expected].id


def test_only_the_merchants_own_entries_and_nothing_for_noise(shop, faq, make_merchant):
    other = make_merchant(name="Florist")
    enable_plugins(other, "concierge")
    services.save_faq(
        db.session, other, "Доставляете цветы?", "Да, доставка цветов бесплатно.", "ru"
    )
    found = services.faq_matches(db.session, shop, "доставка", ["ru"])
    assert [entry.id for entry in found] == [faq["delivery"].id]
    assert services.faq_matches(db.session, shop, '" OR 1=1 -- *', ["ru", "en"]) == []
    assert services.faq_matches(db.session, shop, "", ["ru"]) == []


def test_edits_and_deletions_reach_the_index(shop, faq):
    services.save_faq(
        db.session,
        shop,
        "Где припарковаться?",
        "Парковка за зданием.",
        "ru",
        entry_id=faq["parking"].id,
    )
    assert services.faq_matches(db.session, shop, "парковку", ["ru"])[0].id == faq["parking"].id
    services.delete_faq(db.session, shop, faq["cakes"].id)
    assert services.faq_matches(db.session, shop, "торт", ["ru"]) == []


def test_the_box_suggests_over_htmx_and_without_javascript(client, shop, faq):
    fragment = client.get(
        f"/m/{shop.slug}/ask/suggest?text=доставкой&box=page-1", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "Вы доставляете заказы?" in fragment and "<html" not in fragment
    page = client.get(f"/m/{shop.slug}/ask?text=тортов").get_data(as_text=True)
    assert "Можно заказать торт с надписью?" in page and "<html" in page
    response = client.post_form(f"/m/{shop.slug}/ask/faq/{faq['cakes'].id}/pick", htmx=True)
    assert response.status_code == 200 and "торты с надписью" in response.get_data(as_text=True)
    assert client.post_form(f"/m/{shop.slug}/ask/faq/{faq['cakes'].id}/pick").status_code == 303
    assert services.figures(db.session, shop).faq_answered == 2


def test_kazakh_and_bulgarian_entries_match_by_word_prefix(shop):
    """No stemmer for kk and bg (see docs/search.md): a word's beginning finds its longer forms."""
    kazakh = services.save_faq(
        db.session, shop, "Жеткізу бар ма?", "Иә, жеткізу бір сағат алады.", "kk"
    )
    bulgarian = services.save_faq(
        db.session, shop, "Доставяте ли поръчки?", "Да, доставката е до час.", "bg"
    )
    assert [entry.id for entry in services.faq_matches(db.session, shop, "жеткіз", ["kk"])] == [
        kazakh.id
    ]
    assert [entry.id for entry in services.faq_matches(db.session, shop, "доставя", ["bg"])] == [
        bulgarian.id
    ]
