"""The templates' number, money and date filters give exactly Babel's text, in every language."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask_babel import force_locale, format_datetime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp import formatting, templating

LOCALES = ("en", "ru", "bg", "kk", "de", "fr", "hi", "ar")
CURRENCIES = ("KZT", "EUR", "BGN", "RUB", "USD", "JPY", "KWD")
amounts = st.one_of(st.integers(-10**15, 10**15), st.sampled_from([0, 1, -1, 999, 1000, 10**6, -10**6]))


@pytest.mark.parametrize("locale", LOCALES)
# The app is only read (its Babel setup), never changed between examples.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=amounts, currency=st.sampled_from(CURRENCIES))
def test_money_and_points_filters_match_babel(app, locale, amount, currency):
    with app.test_request_context(), force_locale(locale):
        assert templating.money_filter(amount, currency) == formatting.money(amount, currency, locale=locale)
        assert templating.points_filter(amount) == formatting.points(amount, locale=locale)


def test_filters_follow_a_change_of_language_within_a_request(app):
    moment = datetime(2026, 11, 23, 17, 5, tzinfo=UTC)
    with app.test_request_context():
        with force_locale("en"):
            english = (templating.money_filter(123456, "KZT"), templating.datetime_filter(moment))
            assert english[1] == format_datetime(moment, "medium")
        with force_locale("ru"):
            russian = (templating.money_filter(123456, "KZT"), templating.datetime_filter(moment))
            assert russian[1] == format_datetime(moment, "medium")
            assert templating._gettext("Wallet") != "Wallet"
        assert english != russian


def test_percentages_and_averages_use_the_readers_decimal_mark(app):
    with app.test_request_context():
        page = app.jinja_env.from_string(
            "{{ a|percent }} {{ b|percent }} {{ c|decimal }} {{ d|percent_bp }} {{ e|decimal }}"
        ).render
        values = {"a": 13.5, "b": 40, "c": 4.25, "d": 250, "e": 1234.5}  # variables: Jinja folds constants
        with force_locale("en"):
            assert page(values) == "13.5% 40% 4.25 2.5% 1,234.5"
        with force_locale("ru"):
            assert page(values) == "13,5% 40% 4,25 2,5% 1\u00a0234,5"
        with force_locale("bg"):
            assert page(values) == "13,5% 40% 4,25 2,5% 1\u00a0234,5"


@pytest.mark.parametrize("locale", ("en", "ru", "bg", "kk"))
def test_kept_texts_match_the_formatters_and_follow_the_language(app, locale):
    """share_percent, decimal and phone keep their texts; a kept text is the formatter's own, in
    the reader's language (never the language the text was first made in)."""
    from webapp.services import phones

    with app.test_request_context():
        with force_locale("en"):  # fill the caches in another language first
            for share in (0, 0.135, 1, 0.3333):
                templating.share_percent_filter(share)
        with force_locale(locale):
            for share in (0, 0.135, 1, 0.3333, None):
                assert templating.share_percent_filter(share) == formatting.share_percent(share, locale=locale)
            for value in (0, 4.25, 1234.5, 7, 1, 1.0):
                assert templating.decimal_filter(value) == formatting.decimal(value, locale=locale)
        for number in ("+77011234567", "+359888123456", "not a number", "", None):
            assert templating.phone_filter(number) == (phones.format_international(number) if number else "")
    assert templating.phone_filter("+77011234567") == "+7 701 123 4567"


def test_chart_numbers_are_points_decimals_or_the_charts_format(app):
    with app.test_request_context(), force_locale("ru"):
        assert templating.chart_number_filter(12345) == formatting.points(12345, locale="ru")
        assert templating.chart_number_filter(2.5) == formatting.decimal(2.5, locale="ru")
        page = app.jinja_env.from_string(
            '{% macro label(value) %} {{ value|money("KZT") }} {% endmacro %}'
            '{{ values|map("chart_number", label)|join("|") }}'
        )
        assert page.render(values=[450000, 0]) == "4\u00a0500\u00a0₸|0\u00a0₸"
