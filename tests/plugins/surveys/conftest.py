"""Fixtures for the surveys tests: a shop with the plugin on, a survey builder helper, a purchase helper."""

from __future__ import annotations

import uuid

import pytest

from plugins.surveys import services
from webapp.extensions import db
from webapp.plugins import registry
from webapp.services import merchants as merchant_service
from webapp.services.purchases import PurchaseDraft, record_purchase


@pytest.fixture
def app_overrides():
    # Only the plugins these tests need: other plugins cannot change what is measured here.
    return {"PLUGINS": ["plugins.news", "plugins.surveys"]}


def enable(merchant) -> None:
    merchant_service.set_plugin_enabled(db.session, registry(), merchant, "surveys", True, merchant.owner)


@pytest.fixture
def shop(make_merchant, make_user):
    merchant = make_merchant(name="Bakery Nan", cashiers=[make_user(name="Aigul Cashier")])
    enable(merchant)
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
    draft = PurchaseDraft(
        membership_id=membership.id, amount=amount, points_to_use=0, idempotency_key=uuid.uuid4().hex,
        cashier_id=cashier.id if cashier else None,
    )
    return record_purchase(db.session, merchant, membership, draft).purchase
