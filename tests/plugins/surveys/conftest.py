"""Fixtures for the surveys tests: a shop with the plugin on, a survey builder helper, a purchase helper."""

from __future__ import annotations

import pytest

from plugins.surveys import services
from tests import kit
from tests.kit import enable_plugins
from webapp.extensions import db


@pytest.fixture
def app_overrides():
    # Only the plugins these tests need: other plugins cannot change what is measured here.
    return {"PLUGINS": ["plugins.news", "plugins.surveys"]}


@pytest.fixture
def shop(make_merchant, make_user):
    merchant = make_merchant(name="Bakery Nan", cashiers=[make_user(name="Aigul Cashier")])
    enable_plugins(merchant, "surveys")
    return merchant


def make_survey(merchant, template: str = "how_did_we_do", reward: int = 50, quota: int | None = None,
                public: bool = False, open_it: bool = True, **settings):
    survey = services.create_survey(db.session, merchant, template)
    form = {"title": survey.title, "reward_points": str(reward), "audience": "all",
            "quota": str(quota or ""), "public": "1" if public else ""}
    form.update(settings)
    services.update_settings(db.session, merchant, survey.id, form)
    if open_it:
        services.set_status(db.session, merchant, survey.id, "open")
    return survey


def full_answers(survey) -> dict[str, list[str]]:
    """A valid complete set of answers for any survey."""
    answers: dict[str, list[str]] = {}
    for question in survey.questions:
        value = {"rating": "4", "nps": "9", "short": "Sourdough", "long": "More seats please"}.get(question.kind)
        if question.kind in ("single", "multiple"):
            value = question.options[0]
        answers[f"q{question.id}"] = [value]
    return answers


def buy(merchant, membership, amount: int = 10_000, cashier=None):
    return kit.buy(merchant, membership, amount, cashier=cashier)
