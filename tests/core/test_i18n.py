"""Every UI string is translatable and the Russian catalogue is complete and current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "webapp" / "translations" / "ru" / "LC_MESSAGES" / "messages.po"


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Extract the strings from the code as it is now."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", str(ROOT / "babel.cfg"),
         "-k", "_l", "-o", str(pot), "--no-location", str(ROOT)],
        check=True, cwd=ROOT, capture_output=True,
    )
    with pot.open("rb") as handle:
        return read_po(handle)


def test_russian_catalogue_translates_every_extracted_string(extracted):
    with CATALOGUE.open("rb") as handle:
        russian = read_po(handle, locale="ru")
    missing = [
        message.id for message in extracted
        if message.id and (
            russian.get(message.id) is None
            or not russian.get(message.id).string
            or (isinstance(russian.get(message.id).string, tuple) and not all(russian.get(message.id).string))
        )
    ]
    assert missing == [], f"{len(missing)} strings lack a Russian translation, e.g. {missing[:10]}"
    fuzzy = [message.id for message in russian if message.id and message.fuzzy]
    assert fuzzy == [], f"fuzzy translations need review: {fuzzy[:10]}"


def test_placeholders_survive_translation():
    import re

    with CATALOGUE.open("rb") as handle:
        russian = read_po(handle, locale="ru")
    pattern = re.compile(r"%\((\w+)\)s")
    broken = []
    for message in russian:
        if not message.id or not message.string:
            continue
        source = message.id if isinstance(message.id, str) else message.id[0]
        target = message.string if isinstance(message.string, str) else message.string[0]
        if set(pattern.findall(source)) != set(pattern.findall(target)):
            broken.append(source)
    assert broken == []


def test_pages_render_in_russian(app, client):
    client.post_form("/account/locale", {"locale": "ru", "next": "/auth/login"})
    page = client.get("/auth/login").get_data(as_text=True)
    assert 'lang="ru"' in page
    assert "Войти" in page


def test_money_is_formatted_for_the_locale(app):
    from webapp.formatting import money, parse_money

    # Tenge has no coins in use: whole amounts without ".00", a fraction kept when there is one.
    assert money(450000, "KZT", "en") == "₸4,500"
    assert money(450050, "KZT", "en") == "₸4,500.50"
    assert money(450000, "EUR", "en") == "€4,500.00"
    assert money(-150, "RUB", "en") == "-₽1.50"
    assert "₸" in money(450000, "KZT", "ru")
    assert money(450000, "KZT", "ru").replace("\xa0", " ").startswith("4 500 ₸")
    assert money(450050, "KZT", "ru").replace("\xa0", " ").startswith("4 500,50")
    assert parse_money("4 500,50", "KZT") == 450050
    assert parse_money("4500", "KZT") == 450000
    with pytest.raises(ValueError):
        parse_money("12.345", "KZT")
    with pytest.raises(ValueError):
        parse_money("abc", "KZT")


def test_russian_plurals_and_service_messages_follow_the_locale(app):
    from flask_babel import force_locale, ngettext

    from webapp.formatting import parse_money

    with force_locale("ru"):
        assert [ngettext("point", "points", n) for n in (1, 2, 5, 11, 21)] == [
            "балл", "балла", "баллов", "баллов", "балл",
        ]
        with pytest.raises(ValueError, match="Введите сумму"):
            parse_money("abc", "KZT")
    with force_locale("en"), pytest.raises(ValueError, match="Enter the amount as a number"):
        parse_money("abc", "KZT")


def test_ledger_reasons_are_shown_in_the_readers_language(app):
    from flask_babel import force_locale

    from webapp.formatting import ledger_reason

    with force_locale("ru"):
        assert ledger_reason("Cashback 2.5% on purchase #12") == "Кешбэк 2,5% за покупку № 12"
        assert ledger_reason("Refund of purchase #12: Paid with points, purchase #12") == (
            "Возврат покупки № 12: Оплата баллами, покупка № 12"
        )
        assert ledger_reason("Birthday bonus") == "Birthday bonus"  # a plugin's own words stay
    with force_locale("en"):
        assert ledger_reason("Paid with points, purchase #7") == "Paid with points, purchase #7"
