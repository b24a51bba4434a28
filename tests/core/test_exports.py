"""CSV exports: customers with balances and the ledger of a period, streamed, every formula cell
neutralised (the core helper every CSV on the site goes through)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import update

from webapp.csvfiles import csv_text, safe_cell
from webapp.extensions import db
from webapp.models import LedgerEntry
from webapp.models.base import utcnow


@pytest.mark.parametrize("text", [
    '=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx",
])
def test_cells_a_spreadsheet_would_run_are_neutralised(text):
    assert safe_cell(text) == "'" + text
    exported = csv_text([[text, 5]])
    assert exported.startswith('"\'') or exported.startswith("'")


def test_numbers_and_plain_text_are_left_alone():
    assert safe_cell(-500) == -500 and safe_cell(0) == 0
    assert safe_cell("Aliya") == "Aliya" and safe_cell(None) == ""
    assert csv_text([["a", -5, None]]) == "a,-5,\r\n"


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_the_customer_export_streams_balances_and_neutralises_a_formula_name(
    client, make_merchant, make_member, make_user,
):
    shop = make_merchant()
    evil = make_member(shop, user=make_user(name='=HYPERLINK("http://evil.example","Prize")',
                                             phone="+7 701 123 4567"), points=40)
    make_member(shop, user=make_user(name="Plain"), points=7)
    make_member(make_merchant(), user=make_user(name="Someone else's"), points=99)
    client.login(shop.owner)
    response = client.get(f"/business/{shop.slug}/customers/export.csv?format=machine")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    rows = read_csv(response)
    assert rows[0][:6] == ["card_code", "name", "email", "phone", "joined", "points_balance"]
    by_code = {row[0]: row for row in rows[1:]}
    assert len(by_code) == 2  # only this merchant's customers
    row = by_code[evil.user.card_code]
    assert row[1] == "'=HYPERLINK(\"http://evil.example\",\"Prize\")"
    assert row[3] == "'+77011234567" and row[5] == "40"
    assert not any(cell.startswith(("=", "+", "-", "@")) for line in rows for cell in line)


def test_the_ledger_export_covers_the_period_only_and_refuses_bad_dates(
    client, make_merchant, make_member,
):
    shop = make_merchant()
    member = make_member(shop, points=30)
    old = make_member(shop, points=5)
    db.session.execute(update(LedgerEntry).where(LedgerEntry.membership_id == old.id)
                       .values(created_at=utcnow() - timedelta(days=400)))
    db.session.commit()
    client.login(shop.owner)
    today = utcnow().date()
    response = client.get(f"/business/{shop.slug}/customers/ledger.csv",
                          query_string={"start": (today - timedelta(days=30)).isoformat(),
                                        "end": (today + timedelta(days=1)).isoformat(), "format": "machine"})
    assert response.status_code == 200 and response.is_streamed
    rows = read_csv(response)
    assert rows[0][:6] == ["entry", "time", "card_code", "customer", "kind", "points"]
    assert [(row[2], row[4], row[5]) for row in rows[1:]] == [(member.user.card_code, "adjust", "30")]
    refused = client.get(f"/business/{shop.slug}/customers/ledger.csv",
                         query_string={"start": "2026-13-01", "end": "2026-01-01"})
    assert refused.status_code == 422
    backwards = client.get(f"/business/{shop.slug}/customers/ledger.csv",
                           query_string={"start": "2026-02-01", "end": "2026-01-01"})
    assert backwards.status_code == 422 and "ends before it starts" in backwards.get_data(as_text=True)


def test_exports_are_for_the_owner_only(client, make_merchant, make_user):
    cashier = make_user(name="Cashier")
    shop = make_merchant(cashiers=[cashier])
    client.login(cashier)
    assert client.get(f"/business/{shop.slug}/customers/export.csv").status_code == 404
    assert client.get(f"/business/{shop.slug}/customers/ledger.csv").status_code == 404


def test_people_get_their_language_and_currency_units_programs_the_stable_file(
    client, make_merchant, make_member,
):
    from webapp.models import Membership

    shop = make_merchant()
    member = make_member(shop, points=40)
    db.session.execute(update(Membership).where(Membership.id == member.id).values(total_spent=100000))
    db.session.commit()
    client.login(shop.owner)
    assert client.post_form("/account/locale", {"locale": "ru"}).status_code in (200, 303)
    people = client.get(f"/business/{shop.slug}/customers/export.csv")
    text = people.get_data(as_text=True)
    assert text.startswith("\ufeff")  # spreadsheets read the Cyrillic right
    assert 'filename="customers-' in people.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))  # "," is the decimal mark
    assert rows[0][:3] == ["Код карты", "Имя", "Эл. почта"]
    assert rows[0][6] == "Потрачено всего"
    assert rows[1][5] == "40" and rows[1][6] == "1000"  # ₸1,000 in tenge, not 100000 tiyn
    assert rows[1][10] == "Активен"

    machine = client.get(f"/business/{shop.slug}/customers/export.csv?format=machine")
    assert "-machine.csv" in machine.headers["Content-Disposition"]
    text = machine.get_data(as_text=True)
    assert not text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][6] == "total_spent_minor" and rows[1][6] == "100000" and rows[1][10] == "active"

    ledger = client.get(f"/business/{shop.slug}/customers/ledger.csv")
    rows = list(csv.reader(io.StringIO(ledger.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:2] == ["Запись", "Время"] and rows[0][6] == "Стоимость"
    assert rows[1][5] == "40" and rows[1][6] == "0,4"  # 40 points of 1 tiyn each: ₸0.40
