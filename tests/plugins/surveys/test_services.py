"""Surveys: building, answering, validation, rewards, invitations, ratings and complaints (both backends)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from plugins.surveys import services
from plugins.surveys.models import Answer, Complaint, Invitation, Rating, Response
from tests.kit import enable_plugins
from tests.plugins.surveys.conftest import buy, full_answers, make_survey
from webapp.errors import Conflict, NotFound, ValidationFailed
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership
from webapp.services.ledger import find_balance_mismatches


def _stored(survey) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Answer).join(Response).where(Response.survey_id == survey.id)
    )


def test_completing_pays_the_reward_once_in_the_same_transaction(shop, make_member):
    member = make_member(shop)
    survey = make_survey(shop, reward=70)
    response = services.submit(db.session, survey, member.user, full_answers(survey))
    assert response.status == "completed" and response.reward_paid_at is not None
    db.session.refresh(member)
    assert member.balance == 70
    with pytest.raises(Conflict):
        services.submit(db.session, survey, member.user, full_answers(survey))
    db.session.refresh(member)
    assert member.balance == 70
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.source == "surveys"))
    assert entry.object_ref == f"surveys:response:{response.id}"
    assert find_balance_mismatches(db.session) == []


def test_progress_is_saved_and_can_be_finished_later(shop, make_member):
    member = make_member(shop)
    survey = make_survey(shop)
    first = survey.questions[0]
    services.save_progress(db.session, survey, member.user, {f"q{first.id}": ["5"]})
    saved = services.saved_answers(db.session, services.find_response(db.session, survey, member.user))
    assert saved[first.id].number == 5
    with pytest.raises(ValidationFailed) as error:  # the NPS question is still missing
        services.submit(db.session, survey, member.user, {f"q{first.id}": ["5"]})
    assert f"q{survey.questions[1].id}" in error.value.details["errors"]
    services.submit(db.session, survey, member.user, full_answers(survey))
    assert services.find_response(db.session, survey, member.user).status == "completed"


@pytest.mark.parametrize("case", ["out_of_range", "missing_required", "oversized", "foreign_question", "bad_choice"])
def test_invalid_answers_are_refused_with_a_message_and_store_nothing(shop, make_member, case):
    member = make_member(shop)
    survey = make_survey(shop, template="competitors")
    other = make_survey(shop, template="how_did_we_do")
    answers = full_answers(survey)
    short, multiple, long_text = survey.questions
    if case == "out_of_range":
        survey = make_survey(shop, template="how_did_we_do")
        answers = full_answers(survey)
        answers[f"q{survey.questions[0].id}"] = ["6"]
    elif case == "missing_required":
        answers.pop(f"q{short.id}")
    elif case == "oversized":
        answers[f"q{long_text.id}"] = ["x" * 2001]
    elif case == "foreign_question":
        answers[f"q{other.questions[0].id}"] = ["3"]
    else:
        answers[f"q{multiple.id}"] = ["Free beer"]
    # Saving progress may leave questions open, but never accepts a wrong answer.
    actions = (services.submit,) if case == "missing_required" else (services.submit, services.save_progress)
    for action in actions:
        with pytest.raises(ValidationFailed) as error:
            action(db.session, survey, member.user, answers)
        assert error.value.details["errors"] and all(error.value.details["errors"].values())
    assert _stored(survey) == 0
    assert db.session.scalar(select(func.count()).select_from(Response)) == 0
    db.session.refresh(member)
    assert member.balance == 0


def test_a_closed_survey_takes_no_answers(shop, make_member):
    member = make_member(shop)
    survey = make_survey(shop)
    services.set_status(db.session, shop, survey.id, "closed")
    with pytest.raises(Conflict, match="closed"):
        services.submit(db.session, survey, member.user, full_answers(survey))
    ended = make_survey(shop, starts_on="2020-01-01", ends_on="2020-02-01")
    with pytest.raises(Conflict, match="closed"):
        services.save_progress(db.session, ended, member.user, full_answers(ended))
    assert db.session.scalar(select(func.count()).select_from(Response)) == 0


def test_quota_closes_the_survey(shop, make_member):
    survey = make_survey(shop, quota=1)
    first, second = make_member(shop), make_member(shop)
    services.submit(db.session, survey, first.user, full_answers(survey))
    with pytest.raises(Conflict):
        services.submit(db.session, survey, second.user, full_answers(survey))
    db.session.refresh(second)
    assert second.balance == 0


def test_public_survey_reward_waits_until_the_person_joins(shop, make_user):
    from webapp.services.memberships import join_merchant

    stranger = make_user(name="Passer By")
    survey = make_survey(shop, reward=40, public=True)
    response = services.submit(db.session, survey, stranger, full_answers(survey))
    assert response.reward_paid_at is None and response.reward_points == 40
    membership, joined = join_merchant(db.session, stranger, shop, consent_given=True, text_version="1")
    assert joined
    db.session.refresh(membership)
    assert membership.balance == 40
    db.session.refresh(response)
    assert response.reward_paid_at is not None
    assert find_balance_mismatches(db.session) == []


def test_a_private_survey_is_missing_for_non_members(shop, make_user):
    survey = make_survey(shop)
    with pytest.raises(NotFound):
        services.submit(db.session, survey, make_user(), full_answers(survey))


def test_recent_buyers_audience(shop, make_member):
    survey = make_survey(shop, audience="recent", audience_days="30")
    member = make_member(shop)
    with pytest.raises(NotFound):
        services.check_respondent(db.session, survey, member.user)
    buy(shop, member)
    db.session.refresh(member)
    assert services.check_respondent(db.session, survey, member.user).id == member.id


def test_purchase_invites_once_and_emails_only_with_marketing_consent(shop, make_member, app):
    from webapp.services.memberships import MARKETING, record_consent

    survey = make_survey(shop)
    quiet = make_member(shop)
    keen = make_member(shop)
    record_consent(db.session, keen.user, shop, MARKETING, True, "1", "marketing")
    db.session.commit()
    mail = app.extensions["mailman"]
    before = len(getattr(mail, "outbox", []))
    for member in (quiet, keen, keen):
        buy(shop, member)
    sent = mail.outbox[before:]
    assert [message.to for message in sent] == [[keen.user.email]]
    assert f"/surveys/s/{survey.token}" in sent[0].body
    invitations = db.session.scalars(select(Invitation).where(Invitation.survey_id == survey.id)).all()
    assert sorted(i.user_id for i in invitations) == sorted([quiet.user_id, keen.user_id])
    emailed = {i.user_id: i.emailed for i in invitations}
    assert emailed == {quiet.user_id: False, keen.user_id: True}
    assert services.invited_count(db.session, survey) == 2


def test_deleting_my_answers_keeps_the_reward_and_blocks_a_second_reward(shop, make_member):
    member = make_member(shop)
    survey = make_survey(shop, reward=30)
    response = services.submit(db.session, survey, member.user, full_answers(survey))
    with pytest.raises(NotFound):
        services.delete_my_answers(db.session, make_member(shop).user, response.id)
    services.delete_my_answers(db.session, member.user, response.id)
    assert _stored(survey) == 0
    with pytest.raises(Conflict):
        services.submit(db.session, survey, member.user, full_answers(survey))
    db.session.refresh(member)
    assert member.balance == 30


def test_results_nps_average_proposals_and_csv_neutralises_formulas(shop, make_member):
    survey = make_survey(shop, template="sell_next", reward=0)
    for proposal in ("Croissants", "croissants ", "=HYPERLINK(\"x\")"):
        member = make_member(shop)
        answers = full_answers(survey)
        answers[f"q{survey.questions[0].id}"] = [proposal]
        services.submit(db.session, survey, member.user, answers)
    proposals = services.results(db.session, survey)[0].proposals
    assert proposals[0] == ("Croissants", 2)
    from webapp.csvfiles import csv_text

    exported = csv_text(services.export_rows(db.session, survey))
    assert "'=HYPERLINK" in exported and "\n=HYPERLINK" not in exported
    assert services.text_answers(db.session, survey, "croiss").rows

    nps_survey = make_survey(shop, template="how_did_we_do", reward=0)
    for score in ("10", "9", "3"):
        answers = full_answers(nps_survey)
        answers[f"q{nps_survey.questions[1].id}"] = [score]
        services.submit(db.session, nps_survey, make_member(shop).user, answers)
    nps = services.results(db.session, nps_survey)[1]
    assert nps.nps == 33 and nps.average == pytest.approx(7.33)


def test_low_rating_opens_a_complaint_answered_with_one_bonus(shop, make_member):
    member = make_member(shop)
    cashier = shop.cashiers[0] if hasattr(shop, "cashiers") else None
    purchase = buy(shop, member, cashier=cashier)
    with pytest.raises(ValidationFailed):
        services.rate_visit(db.session, member.user, purchase.id, "0", "")
    with pytest.raises(NotFound):
        services.rate_visit(db.session, make_member(shop).user, purchase.id, "1", "")
    rating = services.rate_visit(db.session, member.user, purchase.id, "1", "Cold bread")
    with pytest.raises(Conflict):
        services.rate_visit(db.session, member.user, purchase.id, "5", "")
    complaint = services.complaint_for_rating(db.session, rating.id)
    assert complaint is not None and services.open_complaints_count(db.session, shop) == 1
    services.answer_complaint(db.session, shop, shop.owner, complaint.id, "So sorry, come back for a fresh loaf")
    first = complaint.first_answer_at
    assert first is not None
    services.answer_complaint(db.session, shop, shop.owner, complaint.id, "Any time")
    db.session.refresh(complaint)
    assert complaint.first_answer_at == first
    before = db.session.get(Membership, member.id).balance
    assert services.send_apology_bonus(db.session, shop, complaint.id, "100") is True
    assert services.send_apology_bonus(db.session, shop, complaint.id, "100") is False
    db.session.refresh(member)
    assert member.balance == before + 100
    services.resolve_complaint(db.session, shop, complaint.id)
    assert services.open_complaints_count(db.session, shop) == 0
    report = services.rating_report(db.session, shop)
    assert report.by_week and report.by_week[0][1] == 1
    assert report.average_answer


def test_a_good_rating_opens_no_complaint(shop, make_member):
    member = make_member(shop)
    rating = services.rate_visit(db.session, member.user, buy(shop, member).id, "5", "")
    assert db.session.scalar(select(func.count()).select_from(Complaint)) == 0
    assert db.session.get(Rating, rating.id).score == 5


def test_another_merchants_survey_and_complaint_are_missing(shop, make_merchant, make_member):
    other = make_merchant(name="Rival")
    enable_plugins(other, "surveys")
    survey = make_survey(shop)
    member = make_member(shop)
    rating = services.rate_visit(db.session, member.user, buy(shop, member).id, "2", "")
    complaint = services.complaint_for_rating(db.session, rating.id)
    with pytest.raises(NotFound):
        services.get_survey(db.session, other, survey.id)
    with pytest.raises(NotFound):
        services.get_question(db.session, other, survey.questions[0].id)
    with pytest.raises(NotFound):
        services.get_complaint(db.session, other, complaint.id)
    with pytest.raises(NotFound):
        services.send_apology_bonus(db.session, other, complaint.id, "10")


def test_the_visit_rating_is_a_customer_fact_for_other_plugins(shop, make_member):
    from webapp.plugins import hooks_for, sorted_by_order

    member = make_member(shop)
    purchase = buy(shop, member)
    assert not sorted_by_order(hooks_for(shop).neighbourly_collect_customer_facts(
        merchant=shop, membership=member, purchase=purchase))
    services.rate_visit(db.session, member.user, purchase.id, "4", "")
    facts = sorted_by_order(hooks_for(shop).neighbourly_collect_customer_facts(
        merchant=shop, membership=member, purchase=purchase))
    assert [(f.key, f.value) for f in facts if f.source == "surveys"] == [("visit_rating", "4/5")]


class _StatusPlugin:
    """A throw-away plugin stating every member's status level, as gamification does."""

    def __init__(self, level: str) -> None:
        self.level = level

    from webapp.plugins import hookimpl

    @hookimpl
    def neighbourly_collect_customer_facts(self, merchant, membership, purchase):
        from webapp.contracts import CustomerFact

        return [CustomerFact(key="status", value=self.level, source="test")]


def test_status_level_audience_uses_the_status_fact(shop, make_member):
    from webapp.plugins import registry

    survey = make_survey(shop, audience="status", audience_status="Gold")
    member = make_member(shop)
    with pytest.raises(NotFound):  # no plugin states a status: nobody is Gold
        services.check_respondent(db.session, survey, member.user)
    plugin = _StatusPlugin("gold")
    registry().pm.register(plugin, name="test-status")
    try:
        assert services.check_respondent(db.session, survey, member.user).id == member.id
        plugin.level = "Silver"
        with pytest.raises(NotFound):
            services.submit(db.session, survey, member.user, full_answers(survey))
    finally:
        registry().pm.unregister(name="test-status")
    with pytest.raises(ValidationFailed):
        services.update_settings(db.session, shop, survey.id, {"title": "x", "audience": "status"})
