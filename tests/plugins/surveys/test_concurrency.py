"""Rewards under load: threads released by a barrier, each in its own app context, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from plugins.surveys import services
from plugins.surveys.models import Response, Survey
from tests.concurrency import race
from tests.plugins.surveys.conftest import full_answers, make_survey
from webapp.errors import Conflict
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, User
from webapp.services.ledger import find_balance_mismatches

REPEATS = 3


pytestmark = pytest.mark.usefixtures("patient_sqlite")



def _rewards(survey_id: int) -> int:
    refs = [f"surveys:response:{rid}" for rid in db.session.scalars(
        select(Response.id).where(Response.survey_id == survey_id))]
    return db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.source == "surveys", LedgerEntry.object_ref.in_(refs)))


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_twenty_concurrent_submissions_of_one_response_pay_once(app, shop, make_member, repeat):
    member = make_member(shop)
    survey = make_survey(shop, reward=25)
    answers = full_answers(survey)
    survey_id, user_id = survey.id, member.user_id
    db.session.commit()

    def submit(_thread, _round):
        fresh_survey = db.session.get(Survey, survey_id)
        return services.submit(db.session, fresh_survey, db.session.get(User, user_id), answers).id

    outcomes = race(app, 20, submit)
    wins = [o for o in outcomes if isinstance(o, int)]
    losses = [o for o in outcomes if not isinstance(o, int)]
    assert len(wins) == 1, outcomes
    assert all(isinstance(o, Conflict) for o in losses), losses
    db.session.expire_all()
    assert db.session.get(Membership, member.id).balance == 25
    assert _rewards(survey_id) == 1
    assert db.session.get(Survey, survey_id).completed_count == 1
    assert find_balance_mismatches(db.session) == []


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_a_quota_of_ten_with_fifty_concurrent_respondents_pays_ten(app, shop, make_member, repeat):
    survey = make_survey(shop, reward=10, quota=10)
    members = [make_member(shop) for _ in range(50)]
    survey_id = survey.id
    answers = full_answers(survey)
    user_ids = [m.user_id for m in members]
    db.session.commit()

    def submit(index, _round):
        fresh_survey = db.session.get(Survey, survey_id)
        return services.submit(db.session, fresh_survey, db.session.get(User, user_ids[index]), answers).id

    outcomes = race(app, 50, submit)
    wins = [o for o in outcomes if isinstance(o, int)]
    assert len(wins) == 10, [o for o in outcomes if not isinstance(o, int | Conflict)]
    assert all(isinstance(o, int | Conflict) for o in outcomes)
    db.session.expire_all()
    assert _rewards(survey_id) == 10
    assert db.session.get(Survey, survey_id).completed_count == 10
    paid = db.session.scalar(select(func.sum(Membership.balance)).where(Membership.id.in_([m.id for m in members])))
    assert paid == 100
    assert db.session.scalar(select(func.count()).select_from(Response).where(
        Response.survey_id == survey_id, Response.status == "completed")) == 10
