"""Letters pages: template editor with live preview, escaping, tenancy, codes, addresses, panels."""

from __future__ import annotations

from sqlalchemy import select

from plugins.letters import services
from plugins.letters.models import LetterTemplate, PostalAddress
from tests.conftest import form_status
from tests.kit import disable_plugins
from tests.plugins.letters.conftest import buy, set_letters
from webapp.extensions import db

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def url(merchant, suffix=""):
    return f"/business/{merchant.slug}/letters/{suffix}"


def test_owner_edits_a_letter_with_live_preview(client, shop):
    client.login(shop.owner)
    page = client.get(url(shop, "templates/thanks"))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Thank you for your visit" in body and 'hx-post="' in body and "input changed" in body
    preview = client.post_form(
        url(shop, "templates/thanks/preview"),
        {"subject": "Hello {first_name}", "body": "Dear {first_name},\n\n" + XSS + " {merchant}"}, htmx=True,
    )
    assert preview.status_code == 200
    fragment = preview.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="letter-preview"')
    assert "Hello Aigerim" in fragment and "Corner Bakery" in fragment
    assert "<script>" not in fragment and "<img src=x" not in fragment and "&lt;script&gt;" in fragment

    response = client.post_form(url(shop, "templates/thanks"), {"subject": "Thanks!", "body": "Hi {first_name}"})
    assert response.status_code == 303
    row = db.session.scalar(select(LetterTemplate).where(LetterTemplate.merchant_id == shop.id))
    assert (row.kind, row.subject, row.body) == ("thanks", "Thanks!", "Hi {first_name}")


def test_unknown_placeholders_and_empty_text_answer_422(client, shop):
    client.login(shop.owner)
    response = client.post_form(
        url(shop, "templates/winback"), {"subject": "", "body": "Hi {__class__} {first_name} {oops}"}, htmx=True
    )
    assert form_status(response) == 422
    body = response.get_data(as_text=True)
    assert "Unknown placeholder: {__class__}, {oops}." in body and body.count('aria-invalid="true"') == 2
    assert db.session.scalar(select(LetterTemplate.id)) is None
    assert client.get(url(shop, "templates/nonsense")).status_code == 404


def test_pages_are_owner_only_tenant_scoped_and_off_when_disabled(client, shop, make_merchant, customer):
    other = make_merchant(name="Car Wash")
    client.login(other.owner)
    assert client.get(url(shop)).status_code == 404
    client.login(shop.owner)
    assert client.get(url(shop)).status_code == 200
    assert client.post_form(url(shop, f"customers/{customer.id}/address"), {}).status_code == 422
    disable_plugins(shop, "letters")
    assert client.get(url(shop)).status_code == 404


def test_partner_codes_are_uploaded_once_each(client, shop):
    client.login(shop.owner)
    response = client.post_form(url(shop, "codes"), {"pool": "cinema", "partner": "Kino", "codes": "A1\nA2\nA1\n"})
    assert response.status_code == 303
    client.post_form(url(shop, "codes"), {"pool": "cinema", "partner": "Kino", "codes": "A2\nA3"})
    assert [(p.pool, p.total, p.used) for p in services.pool_summaries(db.session, shop)] == [("cinema", 3, 0)]
    bad = client.post_form(url(shop, "codes"), {"pool": "", "codes": ""}, htmx=True)
    assert form_status(bad) == 422


def test_customer_enters_a_postal_address_from_the_wallet(client, shop, customer):
    set_letters(shop, postal_letters=True)
    client.login(customer.user)
    wallet = client.get(f"/wallet/cards/{customer.id}").get_data(as_text=True)
    assert "/letters/address" in wallet
    assert client.post_form("/letters/address", {"recipient": "", "street": "x"}).status_code == 422
    response = client.post_form(
        "/letters/address", {"recipient": "Aigerim S.", "street": "Abay 1", "city": "Almaty", "postcode": "050000"}
    )
    assert response.status_code == 303
    row = db.session.scalar(select(PostalAddress))
    assert (row.user_id, row.city) == (customer.user_id, "Almaty")
    # The merchant can correct it from the portrait.
    client.login(shop.owner)
    response = client.post_form(
        url(shop, f"customers/{customer.id}/address"),
        {"recipient": "Aigerim S.", "street": "Abay 2", "city": "Almaty"},
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.scalar(select(PostalAddress.street)) == "Abay 2"


def test_dashboard_panel_shows_sent_letters_and_repeat_rate(client, shop, customer, smtp):
    buy(shop, customer)
    buy(shop, customer)
    figures = services.figures(db.session, shop)
    assert figures.sent == 2 and figures.with_letter == 1 and figures.with_letter_repeat == 1
    assert figures.repeat_rate_with == 100 and figures.repeat_rate_without is None
    client.login(shop.owner)
    dashboard = client.get(f"/business/{shop.slug}/dashboard").get_data(as_text=True)
    panel_url = f"/business/{shop.slug}/letters/panel"
    assert f'hx-get="{panel_url}"' in dashboard  # the scanning panel loads after the page
    panel = client.get(panel_url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "E-mails sent" in panel and "Came back after a letter: 100% of 1 customers." in panel


def test_erasure_removes_the_address_and_cancels_pending_letters(shop, customer):
    set_letters(shop, postal_letters=True)
    services.save_address(db.session, customer.user, {"recipient": "A", "street": "B", "city": "C"})
    buy(shop, customer)
    from webapp.services import privacy

    privacy.erase_customer(db.session, customer.user)
    from plugins.letters.models import Letter

    assert db.session.scalar(select(PostalAddress.id)) is None
    statuses = {letter.status for letter in db.session.scalars(select(Letter).where(Letter.channel == "post"))}
    assert statuses == {"cancelled"}
    assert all(letter.context == {} for letter in db.session.scalars(select(Letter)))


def test_a_sentence_without_its_value_is_left_out_and_the_preview_warns(client, shop):
    from plugins.letters import compose

    body = "Thank you, {first_name}! A gift from our neighbour {bonus_partner}: code {bonus_code}. See you soon."
    rendered = compose.render_letter("Hi {first_name}", body, {"first_name": "Ann", "bonus_code": "", "bonus_partner": ""})
    assert rendered.text == "Thank you, Ann! See you soon."
    assert "neighbour" not in str(rendered.html) and rendered.left_out == ("bonus_partner", "bonus_code")
    full = compose.render_letter("Hi", body, {"first_name": "Ann", "bonus_code": "K-1", "bonus_partner": "Kino"})
    assert full.text == "Thank you, Ann! A gift from our neighbour Kino: code K-1. See you soon." and full.left_out == ()

    client.login(shop.owner)
    form = {"subject": "Thanks", "body": body, "bonus_pool": "cinema"}
    empty = client.post_form(url(shop, "templates/thanks/preview"), form, htmx=True).get_data(as_text=True)
    assert "are left out of the letter: {bonus_partner}, {bonus_code}" in empty and "neighbour" not in empty
    client.post_form(url(shop, "codes"), {"pool": "cinema", "partner": "Kino", "codes": "A2\nA3"})
    stocked = client.post_form(url(shop, "templates/thanks/preview"), form, htmx=True).get_data(as_text=True)
    assert "left out" not in stocked and "A gift from our neighbour Kino Star: code CINEMA-7F3K." in stocked
