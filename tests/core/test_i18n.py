"""Every UI string is translatable and every language's catalogue is complete and current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from webapp.config import Config
from webapp.extensions import db

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [code for code in Config.LANGUAGES if code != Config.BABEL_DEFAULT_LOCALE]
# Named placeholders, literal percent signs, {name} fields and HTML tags (not "<key>" in prose).
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%|\{\w*\}|</?(?:a|abbr|b|br|code|em|i|kbd|p|small|span|strong)\b[^>]*>")


def catalogue(locale: str):
    with (ROOT / "webapp" / "translations" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Extract the strings from the code as it is now."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", str(ROOT / "babel.cfg"),
         "-k", "_l", "-o", str(pot), "--no-location", "--ignore-dirs", ".* _* node_modules instance",
         str(ROOT)],
        check=True, cwd=ROOT, capture_output=True,
    )
    with pot.open("rb") as handle:
        return read_po(handle)


def test_every_offered_language_but_the_default_has_a_catalogue():
    assert {"ru", "kk", "bg"} <= set(TRANSLATED)
    for locale in TRANSLATED:
        assert (ROOT / "webapp" / "translations" / locale / "LC_MESSAGES" / "messages.po").exists(), locale


@pytest.mark.parametrize("locale", TRANSLATED)
def test_catalogue_translates_every_extracted_string(extracted, locale):
    translated = catalogue(locale)
    missing = []
    for message in extracted:
        if not message.id:
            continue
        found = translated.get(message.id)
        if (
            found is None
            or not found.string
            or (isinstance(found.string, tuple) and not all(found.string))
            or (isinstance(message.id, tuple) and not isinstance(found.string, tuple))
        ):
            missing.append(message.id)
    assert missing == [], f"{len(missing)} strings lack a translation into {locale}, e.g. {missing[:10]}"
    fuzzy = [message.id for message in translated if message.id and message.fuzzy]
    assert fuzzy == [], f"fuzzy {locale} translations need review: {fuzzy[:10]}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_plural_forms_are_complete(locale):
    translated = catalogue(locale)
    expected = {"ru": 3, "kk": 2, "bg": 2}.get(locale, translated.num_plurals)
    assert translated.num_plurals == expected
    short = [
        message.id for message in translated
        if message.id and isinstance(message.id, tuple)
        and (len(message.string) != expected or not all(message.string))
    ]
    assert short == []


@pytest.mark.parametrize("locale", TRANSLATED)
def test_placeholders_survive_translation(locale):
    broken = []
    for message in catalogue(locale):
        if not message.id or not message.string:
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        targets = message.string if isinstance(message.string, tuple) else (message.string,)
        named = {name for source in sources for name in re.findall(r"%\((\w+)\)", source)}
        for index, target in enumerate(targets):
            if isinstance(message.id, tuple):
                # Plural forms: every form uses only the source's names; the other forms keep the number.
                if not set(re.findall(r"%\((\w+)\)", target)) <= named or (
                    index > 0 and sorted(PLACEHOLDER.findall(target)) != sorted(PLACEHOLDER.findall(sources[1]))
                ):
                    broken.append(sources[0])
            elif sorted(PLACEHOLDER.findall(target)) != sorted(PLACEHOLDER.findall(sources[0])):
                broken.append(sources[0])
    assert broken == []


def test_a_missing_string_in_any_language_is_caught(extracted, tmp_path):
    """The completeness check reads each catalogue: one string removed from kk is reported."""
    from babel.messages.pofile import write_po

    from scripts.untranslated import missing

    kazakh = catalogue("kk")
    first = next(message for message in extracted if message.id)
    del kazakh[first.id]
    path = tmp_path / "messages.po"
    with path.open("wb") as handle:
        write_po(handle, kazakh)
    with path.open("rb") as handle:
        reread = read_po(handle, locale="kk")
    assert [message.id for message in missing(reread, extracted)] == [first.id]


def test_pages_render_in_russian(app, client):
    client.post_form("/account/locale", {"locale": "ru", "next": "/auth/login"})
    page = client.get("/auth/login").get_data(as_text=True)
    assert 'lang="ru"' in page
    assert "Войти" in page


# What the wallet card shows in each language: Babel's CLDR data for kk and bg, written out here
# so a change of locale data or of the formatting helpers shows up as a failure.
CARD_IN = {
    "kk": {
        "words": ["Әмиянға оралу", "ұпай, құны", "№ %(number)s сатып алу үшін 10% кэшбэк", "Шығу"],
        "value": "12\xa0345,67\xa0₸", "balance": "1\xa0234\xa0567", "when": "09.03.26, 14:05",
    },
    "bg": {
        "words": ["Обратно към портфейла", "точки на стойност", "Кешбек 10% за покупка № %(number)s", "Изход"],
        "value": "12\xa0345,67\xa0₸", "balance": "1\xa0234\xa0567", "when": "9.03.26\u202fг., 14:05",
    },
}


@pytest.mark.parametrize("locale", sorted(CARD_IN))
def test_pages_render_in_kazakh_and_bulgarian_with_their_number_money_and_date_formats(
    locale, app, client, make_user, make_merchant, make_member, give_points,
):
    from datetime import UTC, datetime

    from babel.dates import format_datetime
    from babel.numbers import format_currency, format_decimal
    from sqlalchemy import update

    from webapp.models import LedgerEntry
    from webapp.services.purchases import PurchaseDraft, record_purchase

    merchant = make_merchant(name="Dastarkhan", cashback_bp=1000)
    user = make_user()
    member = make_member(merchant, user=user)
    purchase = record_purchase(
        db.session, merchant, member,
        PurchaseDraft(membership_id=member.id, amount=1_000_000, points_to_use=0, idempotency_key=f"i18n-{locale}"),
    ).purchase
    give_points(member, 1_234_567 - member.balance, reason="Welcome bonus")
    moment = datetime(2026, 3, 9, 14, 5, tzinfo=UTC)
    db.session.execute(update(LedgerEntry).where(LedgerEntry.membership_id == member.id).values(created_at=moment))
    db.session.commit()
    client.login(user)
    client.post_form("/account/locale", {"locale": locale, "next": "/wallet/"})

    page = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
    expected = CARD_IN[locale]
    assert f'lang="{locale}"' in page
    for words in expected["words"]:
        assert words.replace("%(number)s", str(purchase.id)) in page
    # The balance, its worth in tenge and the date, each as Babel writes them for the locale.
    assert expected["balance"] == format_decimal(1_234_567, locale=locale) and expected["balance"] in page
    assert expected["value"] == format_currency(12345.67, "KZT", locale=locale).replace("KZT", "₸")
    assert expected["value"] in page
    assert expected["when"] == format_datetime(moment, "short", tzinfo=UTC, locale=locale)
    assert expected["when"] in page
    for english in ("₸12,345.67", "1,234,567", "3/9/26", "Back to my wallet", "points, worth"):
        assert english not in page


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

    from webapp.ledger_reasons import render

    refund = {"purchase": 12, "reversed": {"kind": "redeem", "params": {"purchase": 12}}}
    with force_locale("ru"):
        assert render("cashback", {"purchase": 12, "rate_bp": 250}) == "Кешбэк 2,5% за покупку № 12"
        assert render("refund", refund) == "Возврат покупки № 12: Оплата баллами, покупка № 12"
        assert render("note", {"text": "Birthday bonus"}) == "Birthday bonus"  # someone's own words stay
    with force_locale("en"):
        assert render("redeem", {"purchase": 7}) == "Paid with points, purchase #7"


def test_untranslated_script_lists_and_applies_translations(extracted, tmp_path):
    """scripts/untranslated.py: the gaps of a catalogue out as JSON, translations back in, checked."""
    import json
    import shutil

    folder = tmp_path / "translations"
    shutil.copytree(ROOT / "webapp" / "translations" / "bg", folder / "bg")
    shutil.copytree(ROOT / "webapp" / "translations" / "ru", folder / "ru")
    path = folder / "bg" / "LC_MESSAGES" / "messages.po"
    bulgarian = catalogue("bg")
    del bulgarian["Save language"]
    bulgarian.get("%(num)s vote").string = ("", "")
    bulgarian.get("Wallet").flags.add("fuzzy")
    from babel.messages.pofile import write_po

    with path.open("wb") as handle:
        write_po(handle, bulgarian)
    pot = tmp_path / "messages.pot"
    with pot.open("wb") as handle:
        write_po(handle, extracted)

    def run(*args):
        return subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "untranslated.py"), "--dir", str(folder), "--pot", str(pot), *args],
            capture_output=True, text=True, cwd=ROOT,
        )

    listed = run("list", "bg")
    assert listed.returncode == 0, listed.stderr
    entries = {entry["msgid"]: entry for entry in json.loads(listed.stdout)}
    assert set(entries) == {"%(num)s vote", "Wallet", "Save language"}
    assert entries["%(num)s vote"]["msgid_plural"] == "%(num)s votes"
    assert entries["%(num)s vote"]["msgstr"] == ["", ""]
    assert entries["Wallet"]["fuzzy"] == "Портфейл" and entries["Wallet"]["reference"] == "Кошелёк"

    # A translation that loses a placeholder is refused and the run fails; the rest is written.
    entries["%(num)s vote"]["msgstr"] = ["%(num)s глас", "гласа"]
    entries["Wallet"]["msgstr"] = "Портфейл"
    entries["Save language"]["msgstr"] = "Запазване на езика"
    answers = tmp_path / "bg.json"
    answers.write_text(json.dumps(list(entries.values()), ensure_ascii=False), encoding="utf-8")
    applied = run("apply", "bg", str(answers))
    assert applied.returncode == 1
    assert "%(num)s vote" in applied.stderr and "2 written, 1 refused, 1 still missing" in applied.stderr

    answers.write_text(json.dumps({"%(num)s vote": ["%(num)s глас", "%(num)s гласа"]}, ensure_ascii=False),
                       encoding="utf-8")
    applied = run("apply", "bg", str(answers))
    assert applied.returncode == 0, applied.stderr
    assert json.loads(run("list", "bg").stdout) == []
    with path.open("rb") as handle:
        result = read_po(handle, locale="bg")
    assert result.get("Save language").string == "Запазване на езика"
    assert not result.get("Wallet").fuzzy
    assert result.get("%(num)s vote").string == ("%(num)s глас", "%(num)s гласа")
