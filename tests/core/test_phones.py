"""Phone numbers: one person however the number is written, E.164 in the database, the
network's country as the default region."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import select

from webapp.errors import Conflict, ValidationFailed
from webapp.extensions import db
from webapp.models import Network, User
from webapp.services import accounts, customers, memberships, phones

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("typed", [
    "8 701 555 0101", "+7 701 555 0101", "701 555 0101", "7015550101", "8 (701) 555-01-01",
    "+7-701-555-01-01",
])
def test_every_spelling_of_a_number_finds_the_same_member_at_the_till(make_merchant, make_member, make_user, typed):
    merchant = make_merchant()
    member = make_member(merchant, user=make_user(phone="8 701 555 0101"))
    assert member.user.phone == "+77015550101"
    found = memberships.find_customer_at_till(db.session, merchant, typed)
    assert found is not None and found.id == member.id


def test_a_different_number_or_garbage_finds_nobody(make_merchant, make_member, make_user):
    merchant = make_merchant()
    make_member(merchant, user=make_user(phone="+7 701 555 0101"))
    for typed in ("8 701 555 0102", "555 0101", "+1 701 555 0101", "phone"):
        assert memberships.find_customer_at_till(db.session, merchant, typed) is None


def test_sign_up_and_profile_store_e164_and_refuse_what_is_not_a_number(network, make_user):
    user = accounts.register_user(db.session, "dana@example.com", "a long enough password", "Dana",
                                  phone="8 777 123 45 67")
    assert user.phone == "+77771234567"
    with pytest.raises(ValidationFailed) as refused:
        accounts.register_user(db.session, "erlan@example.com", "a long enough password", "Erlan",
                               phone="12345")
    assert "not a valid phone number" in refused.value.message
    # The same number written another way is the same number: taken.
    with pytest.raises(Conflict):
        accounts.register_user(db.session, "aru@example.com", "a long enough password", "Aru",
                               phone="+7 (777) 123-45-67")
    accounts.update_profile(db.session, user, name="Dana", phone="777 000 11 22", locale=None,
                            languages=("en", "ru"))
    assert db.session.get(User, user.id).phone == "+77770001122"


def test_customer_search_finds_a_national_spelling_of_the_stored_number(make_merchant, make_member, make_user):
    merchant = make_merchant()
    member = make_member(merchant, user=make_user(phone="+7 701 555 0101"))
    make_member(merchant, user=make_user(phone="+7 702 999 1234"))
    page = customers.search_customers(db.session, merchant, query="8 (701) 555-01-01")
    assert [row.id for row in page.items] == [member.id]


def test_the_default_country_comes_from_the_time_zone_or_an_unambiguous_currency(make_network):
    assert phones.default_country("KZT", "Asia/Almaty") == "KZ"
    assert phones.default_country("EUR", "Europe/Sofia") == "BG"
    assert phones.default_country("RUB", "UTC") == "RU"
    assert phones.default_country("EUR", "UTC") is None  # many countries use the euro
    assert make_network(currency="KZT").country == "KZ"


def test_the_operator_sets_the_country_and_a_wrong_code_is_refused(client, network):
    operator = db.session.get(User, network.operator_id)
    client.login(operator)
    refused = client.post_form(f"/operator/{network.slug}/country", {"country": "XX"})
    assert refused.status_code == 422
    assert "two-letter code" in refused.get_data(as_text=True)
    done = client.post_form(f"/operator/{network.slug}/country", {"country": "ru"})
    assert done.status_code == 303
    assert db.session.scalar(select(Network.country).where(Network.id == network.id)) == "RU"
    # Numbers without a country code now read as Russian ones.
    user = accounts.register_user(db.session, "ivan@example.com", "a long enough password", "Ivan",
                                  phone="8 912 345 67 89")
    assert user.phone == "+79123456789"


def test_the_migration_rewrites_stored_numbers_to_e164_and_derives_countries():
    path = ROOT / "migrations" / "versions" / "core_0007_import.py"
    spec = importlib.util.spec_from_file_location("core_0007_import", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    # Stored as "+" and the digits typed: "8 701 ..." became "+8701...", which is no number.
    assert migration._e164("+87011234567", "KZ") == "+77011234567"
    assert migration._e164("+77011234567", "KZ") == "+77011234567"
    assert migration._e164("+7011234567", "KZ") == "+77011234567"
    assert migration._e164("+123", "KZ") is None
    assert migration._default_country("KZT", "UTC") == "KZ"
    assert migration._default_country("EUR", "UTC") == ""
