"""A neighbour's certificate as a survey reward: offered through the core's reward hooks, given
once inside the transaction that completes the response, within every cap, waiting for people
who join later, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from plugins.cross_marketing import services as certificates
from plugins.cross_marketing.models import Certificate, CertificateEvent, Offer
from plugins.surveys import services
from plugins.surveys.models import Answer, Response, Survey
from tests.concurrency import race
from tests.conftest import form_status
from tests.kit import disable_plugins, enable_plugins
from tests.plugins.cross_marketing.conftest import make_offer, partner
from tests.plugins.surveys.conftest import full_answers, make_survey
from webapp.errors import Conflict, RewardUnavailable, ValidationFailed
from webapp.extensions import db
from webapp.models import Membership, User
from webapp.services.ledger import find_balance_mismatches
from webapp.services.memberships import DATA_PROCESSING, join_merchant, withdraw_consent


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.news", "plugins.surveys", "plugins.cross_marketing"]}


@pytest.fixture
def cafe(make_merchant):
    """The neighbour whose certificate is given away (the issuer)."""
    merchant = make_merchant(name="Café Lipa")
    enable_plugins(merchant, "cross_marketing")
    return merchant


@pytest.fixture
def offer(cafe, shop):
    """A 500-unit certificate at the café that the bakery (``shop``) hands out."""
    enable_plugins(shop, "cross_marketing")
    found = make_offer(cafe, face_value="500")
    partner(cafe, shop, found)
    return found


def option_key(shop) -> str:
    (option,) = services.reward_options(db.session, shop)
    return option.key


def certificate_survey(shop, points: int = 0, **settings):
    return make_survey(shop, reward=points, reward_option=option_key(shop), **settings)


def held(user_id: int) -> list[Certificate]:
    return list(db.session.scalars(select(Certificate).where(Certificate.holder_id == user_id)))


def test_the_options_come_from_the_partnerships_the_merchant_hands_out(shop, cafe, offer):
    (option,) = services.reward_options(db.session, shop)
    assert option.source == "cross_marketing" and option.available
    assert "Café Lipa" in option.label and "500" in option.label
    # The issuer itself hands nothing out, so it has nothing to offer as a reward.
    assert services.reward_options(db.session, cafe) == []


def test_without_the_certificates_plugin_there_is_nothing_to_choose(shop, cafe, offer):
    disable_plugins(shop, "cross_marketing")
    assert services.reward_options(db.session, shop) == []
    survey = services.create_survey(db.session, shop, "how_did_we_do")
    with pytest.raises(ValidationFailed) as refused:
        services.update_settings(db.session, shop, survey.id, {
            "title": "T", "reward_points": "0", "audience": "all",
            "reward_option": f"cross_marketing:partnership:{offer.id}",
        })
    assert "reward_option" in refused.value.details["errors"]
    db.session.rollback()
    assert db.session.get(Survey, survey.id).reward_option == ""


def test_a_member_gets_the_certificate_and_the_points_once(shop, cafe, offer, make_member):
    member = make_member(shop)
    survey = certificate_survey(shop, points=30)
    response = services.submit(db.session, survey, member.user, full_answers(survey))

    (certificate,) = held(member.user_id)
    assert certificate.issuer_id == cafe.id and certificate.distributor_id == shop.id
    assert certificate.issued_purchase_id is None and certificate.status == "issued"
    assert certificate.issued_reason == f"Survey: {survey.title}"
    assert response.reward_ref == f"cross_marketing:certificate:{certificate.id}"
    assert response.reward_paid_at is not None and response.reward_label == survey.reward_label
    assert db.session.get(Membership, member.id).balance == 30
    event = db.session.scalar(select(CertificateEvent).where(CertificateEvent.certificate_id == certificate.id))
    assert event.kind == "issued" and event.purchase_id is None
    assert db.session.get(Offer, offer.id).issued_count == 1

    with pytest.raises(Conflict):
        services.submit(db.session, survey, member.user, full_answers(survey))
    assert len(held(member.user_id)) == 1
    assert find_balance_mismatches(db.session) == []
    # The certificate is a real one: the café finds it at the till by its code.
    code = certificates.display_code(certificate)
    assert certificates.certificate_by_code(db.session, member.user_id, code).id == certificate.id


def test_when_the_certificates_run_out_nothing_completes_and_the_answers_stay(shop, cafe, make_member):
    enable_plugins(shop, "cross_marketing")
    scarce = make_offer(cafe, face_value="500", total_cap="2")
    partner(cafe, shop, scarce)
    survey = certificate_survey(shop, points=10)
    members = [make_member(shop) for _ in range(3)]
    for member in members[:2]:
        services.submit(db.session, survey, member.user, full_answers(survey))

    late = members[2]
    with pytest.raises(RewardUnavailable) as refused:
        services.submit(db.session, survey, late.user, full_answers(survey))
    assert "answers are saved" in refused.value.message
    response = services.find_response(db.session, survey, late.user)
    assert response.status == "started" and response.reward_paid_at is None
    assert db.session.scalar(select(func.count()).select_from(Answer).where(Answer.response_id == response.id)) \
        == len(survey.questions)
    assert held(late.user_id) == []
    assert db.session.get(Membership, late.id).balance == 0
    assert db.session.get(Survey, survey.id).completed_count == 2
    assert services.reward_problem(db.session, shop, survey)
    assert find_balance_mismatches(db.session) == []


def test_a_public_certificate_waits_for_joining_and_a_spent_one_is_recorded_as_missed(
    shop, cafe, make_user, make_member
):
    enable_plugins(shop, "cross_marketing")
    one_left = make_offer(cafe, face_value="500", total_cap="1")
    partner(cafe, shop, one_left)
    survey = certificate_survey(shop, points=20, public=True)
    first, second = make_user(name="First Stranger"), make_user(name="Second Stranger")
    for stranger in (first, second):
        response = services.submit(db.session, survey, stranger, full_answers(survey))
        assert response.reward_paid_at is None and held(stranger.id) == []
    assert services.rewards_given(db.session, survey).waiting == 2

    join_merchant(db.session, first, shop, consent_given=True, text_version="1")
    assert len(held(first.id)) == 1

    # The only certificate is gone: the second person still joins and gets the points.
    membership, joined = join_merchant(db.session, second, shop, consent_given=True, text_version="1")
    assert joined
    assert held(second.id) == []
    assert db.session.get(Membership, membership.id).balance == 20
    response = services.find_response(db.session, survey, second)
    db.session.refresh(response)
    assert response.reward_paid_at is not None and response.reward_missed_at is not None
    assert find_balance_mismatches(db.session) == []
    assert services.rewards_given(db.session, survey) == services.RewardsGiven(
        points=40, certificates=1, waiting=0, missed=1)


def test_a_customer_who_left_gets_the_waiting_reward_when_joining_again(shop, cafe, offer, make_member):
    member = make_member(shop)
    user = member.user
    survey = certificate_survey(shop, points=15, public=True)
    withdraw_consent(db.session, user, shop, DATA_PROCESSING, "1")
    services.submit(db.session, survey, user, full_answers(survey))
    assert held(user.id) == [] and db.session.get(Membership, member.id).balance == 0

    again, newly = join_merchant(db.session, user, shop, consent_given=True, text_version="1")

    assert again.id == member.id and not newly
    assert db.session.get(Membership, member.id).balance == 15
    assert len(held(user.id)) == 1
    assert find_balance_mismatches(db.session) == []


def test_switching_the_certificates_off_blocks_completion_with_a_message(shop, cafe, offer, make_member):
    member = make_member(shop)
    survey = certificate_survey(shop)
    disable_plugins(shop, "cross_marketing")
    assert "not offered any more" in services.reward_problem(db.session, shop, survey)
    with pytest.raises(RewardUnavailable):
        services.submit(db.session, survey, member.user, full_answers(survey))
    assert services.find_response(db.session, survey, member.user).status == "started"


@pytest.mark.usefixtures("patient_sqlite")
def test_twenty_concurrent_submissions_give_one_certificate(app, shop, cafe, offer, make_member):
    member = make_member(shop)
    survey = certificate_survey(shop, points=5)
    survey_id, user_id, answers = survey.id, member.user_id, full_answers(survey)
    db.session.commit()

    def submit(_thread, _round):
        return services.submit(db.session, db.session.get(Survey, survey_id), db.session.get(User, user_id), answers).id

    outcomes = race(app, 20, submit)
    assert len([o for o in outcomes if isinstance(o, int)]) == 1, outcomes
    assert all(isinstance(o, int | Conflict) for o in outcomes)
    db.session.expire_all()
    assert len(held(user_id)) == 1
    assert db.session.get(Offer, offer.id).issued_count == 1
    assert db.session.get(Membership, member.id).balance == 5


@pytest.mark.usefixtures("patient_sqlite")
def test_a_quota_of_ten_and_a_cap_of_six_give_six_certificates_to_thirty_respondents(
    app, shop, cafe, make_member
):
    enable_plugins(shop, "cross_marketing")
    capped = make_offer(cafe, face_value="500", total_cap="6")
    partner(cafe, shop, capped)
    survey = certificate_survey(shop, quota=10)
    members = [make_member(shop) for _ in range(30)]
    survey_id, answers, user_ids = survey.id, full_answers(survey), [m.user_id for m in members]
    db.session.commit()

    def submit(index, _round):
        return services.submit(db.session, db.session.get(Survey, survey_id), db.session.get(User, user_ids[index]), answers).id

    outcomes = race(app, 30, submit)
    assert len([o for o in outcomes if isinstance(o, int)]) == 6
    assert all(isinstance(o, int | Conflict) for o in outcomes), outcomes
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Certificate).where(Certificate.offer_id == capped.id)) == 6
    assert db.session.get(Offer, capped.id).issued_count == 6
    assert db.session.get(Survey, survey_id).completed_count == 6
    assert db.session.scalar(select(func.count()).select_from(Response).where(
        Response.survey_id == survey_id, Response.reward_ref != "")) == 6


def test_owner_chooses_the_certificate_in_the_builder_and_the_customer_sees_it(
    client, shop, cafe, offer, make_member
):
    survey = services.create_survey(db.session, shop, "how_did_we_do")
    client.login(shop.owner)
    base = f"/business/{shop.slug}/surveys/{survey.id}"
    page = client.get(base).get_data(as_text=True)
    key = option_key(shop)
    assert key in page and "Café Lipa" in page

    refused = client.post_form(f"{base}/settings", {"title": "Quick", "reward_points": "0", "audience": "all",
                                                    "reward_option": "cross_marketing:partnership:999999"}, htmx=True)
    assert form_status(refused) == 422
    assert "Choose one of the rewards offered." in refused.get_data(as_text=True)
    assert db.session.get(Survey, survey.id).reward_option == ""

    saved = client.post_form(f"{base}/settings", {"title": "Quick", "reward_points": "0", "audience": "all",
                                                  "reward_option": key})
    assert saved.status_code == 303
    client.post_form(f"{base}/status", {"status": "open"})
    db.session.expire_all()
    survey = db.session.get(Survey, survey.id)
    assert survey.reward_option == key and "Café Lipa" in survey.reward_label

    member = make_member(shop)
    client.post_form("/auth/logout")
    client.login(member.user)
    page = client.get(f"/surveys/s/{survey.token}").get_data(as_text=True)
    assert "Reward when you finish" in page and "Café Lipa" in page
    form = full_answers(survey)
    form["action"] = "submit"
    assert client.post_form(f"/surveys/s/{survey.token}", form).status_code == 303
    done = client.get(f"/surveys/s/{survey.token}").get_data(as_text=True)
    assert "is in your wallet" in done
    wallet = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
    assert f"Survey: {survey.title}" in wallet

    client.post_form("/auth/logout")
    client.login(shop.owner)
    results = client.get(f"{base}/results").get_data(as_text=True)
    assert re.search(r'class="surveys-certificates-given">1<', results)
