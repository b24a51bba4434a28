"""The full-text search service on real SQLite (FTS5 + Snowball) and real PostgreSQL (tsvector)."""

from __future__ import annotations

import pytest

from webapp.extensions import db
from webapp.models import SearchDocument
from webapp.services import fulltext

KIND = "test_doc"


def _index(ref_id, text, language="ru", merchant_id=None, title=""):
    fulltext.index(
        db.session,
        kind=KIND,
        ref_id=ref_id,
        merchant_id=merchant_id,
        language=language,
        text=text,
        weight_text=title,
    )


def _found(query, language="ru", **kwargs):
    return [
        hit.ref_id
        for hit in fulltext.search(db.session, kind=KIND, query=query, language=language, **kwargs)
    ]


@pytest.fixture
def russian_docs(app):
    _index(1, "Кофе латте с овсяным молоком", title="Латте")
    _index(2, "Маникюр с покрытием гель-лак", title="Маникюр")
    _index(3, "Мужская стрижка машинкой", title="Стрижка")
    _index(4, "Свежий хлеб и булочки каждое утро", title="Хлеб")
    db.session.commit()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("кофе", [1]),
        ("латте", [1]),
        ("Латте", [1]),
        ("маникюра", [2]),  # genitive finds the nominative
        ("маникюру", [2]),
        ("стрижки", [3]),
        ("стрижку", [3]),
        ("булочка", [4]),
        ("овсяное молоко", [1]),  # every word must match
    ],
)
def test_russian_inflected_forms_are_found(russian_docs, query, expected):
    assert _found(query) == expected


def test_a_word_that_is_nowhere_finds_nothing(russian_docs):
    assert _found("велосипед") == []
    assert _found("маникюр хлеб") == []  # both words must be in the same document


def test_the_last_word_matches_as_a_prefix_while_typing(russian_docs):
    assert _found("ман") == [2]
    assert _found("стри") == [3]
    assert _found("овсяным мол") == [1]
    # Only the last word is a prefix: a finished first word must match a whole (stemmed) word.
    assert _found("овс молоко") == []


def test_english_stemming_and_prefix(app):
    _index(10, "Men's haircut with a beard trim", language="en", title="Haircut")
    _index(11, "Oat milk latte", language="en", title="Latte")
    db.session.commit()
    assert _found("haircuts", language="en") == [10]
    assert _found("trimming", language="en") == [10]
    assert _found("hair", language="en") == [10]
    assert _found("lattes", language="en") == [11]
    assert _found("la", language="en") == [11]


@pytest.mark.parametrize("language", ["kk", "bg"])
def test_kazakh_and_bulgarian_fall_back_to_lower_cased_prefixes(app, language):
    _index(20, "Ерлерге арналған шаш қию", language="kk", title="Шаш қию")
    _index(21, "Мъжко подстригване и оформяне на брада", language="bg", title="Подстригване")
    db.session.commit()
    if language == "kk":
        assert _found("ШАШ", language="kk") == [20]
        assert _found("ерлер", language="kk") == [20]  # every word is a prefix: suffixes are caught
        assert _found("шашты", language="kk") == []  # no stemmer: a longer form is not reduced
    else:
        assert _found("подстриг", language="bg") == [21]
        assert _found("брад оформ", language="bg") == [21]


def test_latin_words_in_a_russian_document_use_the_english_stemmer(app):
    _index(12, "Flat white и lattes на выбор", title="Coffee")
    db.session.commit()
    assert _found("latte") == [12]
    assert _found("coffees") == [12]


def test_title_words_rank_above_body_words(app):
    _index(30, "Выпечка к кофе: круассан", title="Круассан")
    _index(31, "Зерновой кофе свежей обжарки", title="Кофе")
    db.session.commit()
    assert _found("кофе") == [31, 30]


def test_merchant_scope_and_limit(app, make_merchant):
    first, second = make_merchant(), make_merchant()
    _index(40, "Капучино", merchant_id=first.id)
    _index(41, "Капучино большой", merchant_id=second.id)
    db.session.commit()
    assert _found("капучино", merchant_ids=[first.id]) == [40]
    assert _found("капучино", merchant_ids=[]) == []
    assert sorted(_found("капучино")) == [40, 41]
    assert len(_found("капучино", limit=1)) == 1


def test_reindexing_replaces_and_remove_forgets(russian_docs):
    _index(1, "Чай зелёный", title="Чай")
    db.session.commit()
    assert _found("латте") == []
    assert _found("чай") == [1]
    assert db.session.query(SearchDocument).filter_by(kind=KIND, ref_id=1).count() == 1
    fulltext.remove(db.session, kind=KIND, ref_id=1)
    fulltext.remove(db.session, kind=KIND, ref_id=999)  # unknown: nothing happens
    db.session.commit()
    assert _found("чай") == []
    assert _found("маникюр") == [2]


def test_kinds_do_not_mix(russian_docs):
    fulltext.index(
        db.session, kind="other", ref_id=1, merchant_id=None, language="ru", text="маникюр"
    )
    db.session.commit()
    assert _found("маникюр") == [2]
    assert [
        hit.ref_id
        for hit in fulltext.search(db.session, kind="other", query="маникюр", language="ru")
    ] == [1]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "'",
        "*",
        "latte*",
        '"латте',
        "латте OR маникюр",
        "NEAR(латте маникюр)",
        "-латте",
        "латте -маникюр",
        "латте\x00",
        "\x00",
        "a & b | !c",
        "латте:*",
        "(",
        ")",
        "^",
        "title:латте",
        "'; DROP TABLE search_documents; --",
        "<->",
        "\\",
        "   ",
        "",
        "_",
        "%",
        "___кофе___",
    ],
)
def test_injection_like_input_is_plain_text(russian_docs, query):
    hits = fulltext.search(db.session, kind=KIND, query=query, language="ru")
    assert all(isinstance(hit, fulltext.Hit) for hit in hits)
    assert db.session.query(SearchDocument).count() == 4  # still there, nothing broke


def test_operators_are_words_not_syntax(russian_docs):
    # "OR" is an ordinary word that no document has, so nothing matches (not "латте OR маникюр").
    assert _found("латте OR маникюр") == []
    assert _found("латте\x00") == [1]
    assert _found("___кофе___") == [1]


def test_query_is_bounded():
    long_query = " ".join(f"слово{n}" for n in range(50)) + " " + "я" * 500
    terms = fulltext.query_terms(long_query)
    assert len(terms) == fulltext.MAX_TERMS
    assert sum(len(term) for term in terms) <= fulltext.MAX_QUERY_LENGTH


def test_long_query_runs(russian_docs):
    assert _found("кофе " * 200) == [1]
