"""Kazakh and Bulgarian next to English and Russian: chosen the same ways, the network's default
language set by its operator, and e-mails written in the language of the person who reads them."""

from __future__ import annotations

import pytest

from webapp.extensions import db
from webapp.models import Network


def text_of(response) -> str:
    return response.get_data(as_text=True)


def sent_to(app, address: str, before: int) -> list:
    return [message for message in app.extensions["mailman"].outbox[before:] if address in message.to]


def outbox_size(app) -> int:
    return len(getattr(app.extensions["mailman"], "outbox", []))


@pytest.mark.parametrize(("locale", "sign_in"), [("kk", "Кіру"), ("bg", "Вход")])
def test_kazakh_and_bulgarian_are_chosen_like_russian(client, make_user, locale, sign_in):
    # By the browser's Accept-Language, a regional variant included.
    page = text_of(client.get("/auth/login", headers={"Accept-Language": f"{locale}-XX,{locale};q=0.9,en;q=0.5"}))
    assert f'lang="{locale}"' in page and sign_in in page and ">Sign in<" not in page
    # By the switcher, which offers every language by its own name.
    client.post_form("/account/locale", {"locale": "en", "next": "/auth/login"})
    page = text_of(client.get("/auth/login"))
    assert 'lang="en"' in page
    for name in ("English", "Русский", "Қазақша", "Български"):
        assert name in page
    client.post_form("/account/locale", {"locale": locale, "next": "/auth/login"})
    assert f'lang="{locale}"' in text_of(client.get("/auth/login"))
    # By the account's language, which follows the person to any browser.
    user = make_user()
    client.login(user)
    saved = client.post_form("/account/profile", {"name": user.name, "phone": "", "locale": locale})
    assert saved.status_code == 303
    db.session.refresh(user)
    assert user.locale == locale
    other = client.application.test_client()
    other.login(user)
    page = text_of(other.get("/account/", headers={"Accept-Language": "en"}))
    assert f'lang="{locale}"' in page


def test_the_operator_sets_the_networks_default_language(client, network, make_user):
    client.login(network.operator)
    page = text_of(client.get(f"/operator/{network.slug}/"))
    assert f'action="/operator/{network.slug}/language"' in page
    assert '<option value="en" lang="en" selected>English</option>' in page
    assert '<option value="bg" lang="bg" >Български</option>' in page

    url = f"/operator/{network.slug}/language"
    refused = client.post_form(url, {"locale": "de"})
    assert refused.status_code == 422
    assert "The default language must be one of: en, ru, kk, bg." in text_of(refused)
    db.session.refresh(network)
    assert network.default_locale == "en"

    saved = client.post_form(url, {"locale": "bg"})
    assert saved.status_code == 303
    db.session.refresh(network)
    assert network.default_locale == "bg"
    page = text_of(client.get(f"/operator/{network.slug}/"))
    assert "Български is now the network&#39;s default language." in page
    assert '<option value="bg" lang="bg" selected>Български</option>' in page

    # Nobody else may change it, and a form without its CSRF token changes nothing.
    client.post_form("/auth/logout")
    stranger = make_user()
    client.login(stranger)
    assert client.post_form(url, {"locale": "kk"}).status_code in (403, 404)
    client.post_form("/auth/logout")
    client.login(network.operator)
    assert client.post(url, data={"locale": "kk"}).status_code == 400
    db.session.refresh(network)
    assert network.default_locale == "bg"


def test_a_network_is_created_with_any_offered_language(app):
    from webapp.errors import ValidationFailed
    from webapp.services import merchants

    with app.test_request_context():
        for locale in ("en", "ru", "kk", "bg"):
            assert merchants.clean_network(db.session, f"Street {locale}", "KZT", locale, None)[0]
        with pytest.raises(ValidationFailed):
            merchants.clean_network(db.session, "Street de", "EUR", "de", None)


def test_password_reset_is_written_in_the_readers_language_not_the_browsers(app, client, make_user):
    user = make_user(name="Айгерім Сәденова", locale="kk")
    before = outbox_size(app)
    response = client.post_form("/auth/reset", {"email": user.email}, headers={"Accept-Language": "en"})
    assert "If an account exists" in text_of(response)  # the page follows the browser
    [message] = sent_to(app, user.email, before)
    assert message.subject == "Neighbourly құпиясөзіңізді қалпына келтіріңіз"
    assert message.body.startswith("Сәлеметсіз бе, Айгерім!")


def test_a_reader_without_a_language_gets_the_networks(app, client, make_merchant, make_user):
    merchant = make_merchant(name="Vitosha Bakery")
    merchant.network.default_locale = "bg"
    db.session.commit()
    known = make_user(locale="kk")
    before = outbox_size(app)
    client.login(merchant.owner)
    for address in (known.email, "new.cashier@example.com"):
        response = client.post_form(f"/business/{merchant.slug}/staff/invite", {"email": address})
        assert response.status_code == 303
    [to_known] = sent_to(app, known.email, before)
    assert to_known.subject == "Vitosha Bakery сізді өз кассасында жұмыс істеуге шақырады"
    [to_new] = sent_to(app, "new.cashier@example.com", before)
    assert to_new.subject == "Vitosha Bakery ви кани да работите на касата му"
    assert "Отворете този линк до седем дни" in to_new.body
    # The owner's own page stays in the owner's language.
    assert "An invitation is on its way" in text_of(client.get(f"/business/{merchant.slug}/staff"))


def test_recipient_language_skips_languages_the_site_does_not_offer(app, make_user, network):
    from webapp.mail import recipient_locale

    person = make_user(locale="de")
    network.default_locale = "xx"
    assert recipient_locale(person, network) == "en"
    network.default_locale = "kk"
    assert recipient_locale(person, network) == "kk"
    person.locale = "bg"
    assert recipient_locale(person, network) == "bg"
    assert recipient_locale(None, None) == "en"
    db.session.rollback()
    assert db.session.get(Network, network.id).default_locale == "en"


def test_a_language_chosen_before_signing_in_stays_and_fills_an_empty_account_choice(client, make_user):
    fresh = make_user()
    settled = make_user(locale="kk")
    client.post_form("/account/locale", {"locale": "bg", "next": "/auth/login"})
    client.login(fresh)
    db.session.refresh(fresh)
    assert fresh.locale == "bg"
    assert 'lang="bg"' in text_of(client.get("/wallet/", headers={"Accept-Language": "en"}))
    signed_out = client.post_form("/auth/logout", follow_redirects=True)
    assert 'lang="bg"' in text_of(signed_out) and "Излязохте." in text_of(signed_out)

    client.login(settled)  # an account's own choice is kept and wins
    db.session.refresh(settled)
    assert settled.locale == "kk"
    assert 'lang="kk"' in text_of(client.get("/wallet/"))
