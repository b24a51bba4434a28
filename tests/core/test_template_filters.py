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
