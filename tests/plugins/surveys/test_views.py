"""Surveys through HTTP: the htmx builder, answering with clear messages, escaping, tenant isolation."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from plugins.surveys import services
from plugins.surveys.models import Answer, Complaint, Question, Survey
from tests.conftest import form_status
from tests.kit import enable_plugins
from tests.plugins.surveys.conftest import buy, full_answers, make_survey
from webapp.extensions import db
from webapp.models import Membership

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def base(merchant) -> str:
    return f"/business/{merchant.slug}/surveys"


def test_owner_builds_a_survey_with_htmx_fragments(app, client, shop):
    client.login(shop.owner)
    response = client.post_form(f"{base(shop)}/new", {"template": "sell_next"})
    assert response.status_code == 303
    survey = db.session.scalar(select(Survey).where(Survey.merchant_id == shop.id))
    assert [q.kind for q in survey.questions] == ["short", "long"]
    url = f"{base(shop)}/{survey.id}"
    # Add a question: htmx gets only the question list back.
    response = client.post_form(f"{url}/questions", {"kind": "single", "text": "Which day?",
                                                     "choices": "Monday\nFriday", "required": "1"}, htmx=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Which day?" in page and "<html" not in page
    # A bad question answers 422 with the message, and nothing is added.
    response = client.post_form(f"{url}/questions", {"kind": "multiple", "text": "Pick", "choices": "One"}, htmx=True)
    assert form_status(response) == 422 and "at least two options" in response.get_data(as_text=True)
    db.session.expire_all()
    survey = db.session.get(Survey, survey.id)
    assert len(survey.questions) == 3
    new = survey.questions[-1]
    # Reorder, edit, remove.
    client.post_form(f"{url}/questions/{new.id}/move", {"direction": "up"}, htmx=True)
    db.session.expire_all()
    assert [q.text for q in db.session.get(Survey, survey.id).questions][1] == "Which day?"
    response = client.post_form(f"{url}/questions/{new.id}", {"kind": "single", "text": "Which weekday?",
                                                              "choices": "Monday\nFriday"}, htmx=True)
    assert "Which weekday?" in response.get_data(as_text=True)
    client.post_form(f"{url}/questions/{new.id}/delete", {}, htmx=True)
    db.session.expire_all()
    assert db.session.get(Question, new.id) is None
    # Settings, preview, opening.
    response = client.post_form(f"{url}/settings", {"title": "Next product", "reward_points": "-5", "audience": "all"}, htmx=True)
    assert form_status(response) == 422 and "Enter whole points" in response.get_data(as_text=True)
    response = client.post_form(f"{url}/settings", {"title": "Next product", "reward_points": "30", "audience": "all", "quota": "5"})
    assert response.status_code == 303
    assert client.get(f"{url}/preview").status_code == 200
    client.post_form(f"{url}/status", {"status": "open"})
    db.session.expire_all()
    survey = db.session.get(Survey, survey.id)
    assert (survey.status, survey.reward_points, survey.quota) == ("open", 30, 5)


def test_customer_answers_with_clear_messages_then_gets_points(app, client, shop, make_member):
    member = make_member(shop)
    survey = make_survey(shop, reward=60)
    client.login(member.user)
    url = f"/surveys/s/{survey.token}"
    page = client.get(url).get_data(as_text=True)
    assert survey.questions[0].text in page
    rating, nps, _comment = survey.questions
    response = client.post_form(url, {f"q{rating.id}": "9", "action": "submit"}, htmx=True)
    body = response.get_data(as_text=True)
    assert form_status(response) == 422
    assert "Choose a number from 1 to 5." in body and "Please answer this question." in body
    assert db.session.scalar(select(func.count()).select_from(Answer)) == 0
    # Save progress, leave, come back: the answer is still there.
    assert client.post_form(url, {f"q{rating.id}": "4", "action": "save"}).status_code == 303
    assert 'value="4" checked' in client.get(url).get_data(as_text=True)
    response = client.post_form(url, {f"q{rating.id}": "4", f"q{nps.id}": "10", "action": "submit"})
    assert response.status_code == 303
    assert "points are on your card" in client.get(url).get_data(as_text=True)
    db.session.refresh(member)
    assert member.balance == 60
    # Wallet and the list of my answers; deleting keeps the points.
    assert "My survey answers" in client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
    response_row = services.find_response(db.session, survey, member.user)
    assert client.post_form(f"/surveys/mine/{response_row.id}/delete", {}).status_code == 303
    db.session.refresh(member)
    assert member.balance == 60
    assert db.session.scalar(select(func.count()).select_from(Answer)) == 0


def test_closed_survey_page_says_so_and_stores_nothing(app, client, shop, make_member):
    member = make_member(shop)
    survey = make_survey(shop)
    services.set_status(db.session, shop, survey.id, "closed")
    client.login(member.user)
    response = client.post_form(f"/surveys/s/{survey.token}", {**{k: v[0] for k, v in full_answers(survey).items()}, "action": "submit"})
    assert response.status_code == 409 and "This survey is closed." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Answer)) == 0


def test_xss_in_answers_and_comments_renders_escaped(app, client, shop, make_member):
    member = make_member(shop)
    survey = make_survey(shop, template="sell_next")
    answers = full_answers(survey)
    answers[f"q{survey.questions[0].id}"] = [XSS]
    answers[f"q{survey.questions[1].id}"] = [XSS]
    services.submit(db.session, survey, member.user, answers)
    purchase = buy(shop, member)
    rating = services.rate_visit(db.session, member.user, purchase.id, "1", XSS)
    complaint = services.complaint_for_rating(db.session, rating.id)
    services.answer_complaint(db.session, shop, shop.owner, complaint.id, XSS)
    client.login(shop.owner)
    pages = [
        f"{base(shop)}/{survey.id}/results", f"{base(shop)}/{survey.id}/results?q=script",
        f"{base(shop)}/ratings", f"{base(shop)}/complaints/{complaint.id}",
        f"/business/{shop.slug}/customers/{member.id}",
    ]
    for url in pages:
        body = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in body, url
        assert "<img src=x" not in body, url
    results = client.get(pages[0]).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in results
    portrait = client.get(pages[-1]).get_data(as_text=True)
    assert "&lt;script&gt;" in portrait
    exported = client.get(f"{base(shop)}/{survey.id}/export.csv").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(exported)))[1][2] == XSS


def test_a_merchant_never_sees_another_merchants_survey_or_responses(app, client, shop, make_merchant, make_member):
    rival = make_merchant(name="Rival Bakery")
    enable_plugins(rival, "surveys")
    member = make_member(shop)
    survey = make_survey(shop)
    services.submit(db.session, survey, member.user, full_answers(survey))
    rating = services.rate_visit(db.session, member.user, buy(shop, member).id, "2", "Slow")
    complaint = services.complaint_for_rating(db.session, rating.id)
    question = survey.questions[0]
    client.login(rival.owner)
    own = base(rival)
    for url in (f"{own}/{survey.id}", f"{own}/{survey.id}/results", f"{own}/{survey.id}/export.csv",
                f"{own}/{survey.id}/preview", f"{own}/complaints/{complaint.id}", f"{base(shop)}/",
                f"{base(shop)}/{survey.id}/results"):
        assert client.get(url).status_code == 404, url
    for url, data in ((f"{own}/{survey.id}/settings", {"title": "Hijack"}),
                      (f"{own}/{survey.id}/questions/{question.id}/delete", {}),
                      (f"{own}/{survey.id}/status", {"status": "closed"}),
                      (f"{own}/complaints/{complaint.id}/bonus", {"points": "500"}),
                      (f"{own}/complaints/{complaint.id}/answer", {"body": "hi"})):
        assert client.post_form(url, data).status_code == 404, url
    db.session.expire_all()
    assert db.session.get(Survey, survey.id).title != "Hijack"
    assert db.session.get(Question, question.id) is not None
    assert db.session.get(Complaint, complaint.id).bonus_paid_at is None
    assert [m.body for m in db.session.get(Complaint, complaint.id).messages] == ["Slow"]


def test_rating_from_the_receipt_link_opens_a_complaint_the_owner_answers(app, client, shop, make_member):
    member = make_member(shop)
    purchase = buy(shop, member, cashier=None)
    client.login(shop.owner)
    receipt = client.get(f"/business/{shop.slug}/purchases/{purchase.id}")
    assert receipt.status_code == 200
    assert f"/surveys/rate/{purchase.id}" in receipt.get_data(as_text=True)
    customer = app.test_client()
    customer.login(member.user)
    mail = app.extensions["mailman"]
    before = len(getattr(mail, "outbox", []))
    response = customer.post_form(f"/surveys/rate/{purchase.id}", {"score": "1", "comment": "Rude"})
    assert response.status_code == 303
    sent = mail.outbox[before:]
    assert [message.to for message in sent] == [[shop.owner.email]] and "Rude" in sent[0].body
    complaint = db.session.scalar(select(Complaint))
    assert complaint is not None
    assert "open complaint" in client.get(f"/business/{shop.slug}/dashboard").get_data(as_text=True)
    client.post_form(f"{base(shop)}/complaints/{complaint.id}/answer", {"body": "We apologise"})
    client.post_form(f"{base(shop)}/complaints/{complaint.id}/bonus", {"points": "50"})
    client.post_form(f"{base(shop)}/complaints/{complaint.id}/bonus", {"points": "50"})
    db.session.expire_all()
    assert db.session.get(Membership, member.id).balance == 50 + purchase.points_earned
    thread = customer.get(f"/surveys/complaints/{complaint.id}").get_data(as_text=True)
    assert "We apologise" in thread
    assert "The business answered your complaint" in customer.get("/wallet/").get_data(as_text=True)
    # Another customer cannot read it.
    stranger = app.test_client()
    stranger.login(make_member(shop).user)
    assert stranger.get(f"/surveys/complaints/{complaint.id}").status_code == 404
    assert stranger.post_form(f"/surveys/rate/{purchase.id}", {"score": "5"}).status_code == 404


@pytest.mark.parametrize("score", ["0", "6", "x", ""])
def test_rating_out_of_range_is_refused(app, client, shop, make_member, score):
    member = make_member(shop)
    purchase = buy(shop, member)
    client.login(member.user)
    response = client.post_form(f"/surveys/rate/{purchase.id}", {"score": score})
    assert response.status_code == 422 and "Choose from 1 to 5 stars." in response.get_data(as_text=True)


def test_survey_invitations_and_complaints_are_written_in_each_readers_language(app, client, shop, make_user, make_member):
    """A cashier's sale invites a Bulgarian customer in Bulgarian; her complaint reaches a Kazakh owner in Kazakh."""
    from webapp.services import memberships

    make_survey(shop)
    shop.owner.locale = "kk"
    db.session.commit()
    member = make_member(shop, user=make_user(name="Мария Петрова", locale="bg"))
    memberships.grant_consent(db.session, member.user, shop, memberships.MARKETING, "test")
    mail = app.extensions["mailman"]
    before = len(getattr(mail, "outbox", []))
    with app.test_request_context(headers={"Accept-Language": "en"}):  # the till speaks English
        purchase = buy(shop, member)
    [invitation] = [message for message in mail.outbox[before:] if message.to == [member.user.email]]
    assert invitation.subject == "Bakery Nan иска вашето мнение"
    assert invitation.body.startswith("Здравейте, Мария,") and "Вашата награда за отговорите: 50 точки." in invitation.body

    customer = app.test_client()
    customer.login(member.user)
    before = len(mail.outbox)
    customer.post_form(f"/surveys/rate/{purchase.id}", {"score": "1", "comment": "Студено кафе"})
    [complaint] = mail.outbox[before:]
    assert complaint.to == [shop.owner.email]
    assert complaint.subject == "Шағым: клиент келуді 5-тен 1 деп бағалады"
    assert "Студено кафе" in complaint.body and "шағым тізбегінде" in complaint.body


def test_staff_opening_the_rate_link_get_the_receipt_and_a_refunded_visit_is_not_offered(app, client, shop, make_member):
    from webapp.services.purchases import refund_purchase

    member = make_member(shop)
    purchase = buy(shop, member, cashier=None)
    client.login(shop.owner)
    response = client.get(f"/surveys/rate/{purchase.id}")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/business/{shop.slug}/purchases/{purchase.id}"
    assert "This link is for the customer" in client.get(response.headers["Location"]).get_data(as_text=True)

    customer = app.test_client()
    customer.login(member.user)
    assert "Rate this visit" in customer.get("/wallet/").get_data(as_text=True)
    refund_purchase(db.session, shop, purchase.id, shop.owner.id)
    receipt = client.get(f"/business/{shop.slug}/purchases/{purchase.id}").get_data(as_text=True)
    assert f"/surveys/rate/{purchase.id}" not in receipt and "Rate this visit" not in receipt
    assert "Rate this visit" not in customer.get("/wallet/").get_data(as_text=True)
    # The QR code on the paper receipt still opens: it says why, and offers no stars.
    page = customer.get(f"/surveys/rate/{purchase.id}").get_data(as_text=True)
    assert "This purchase was refunded" in page and 'name="score"' not in page
    late = customer.post_form(f"/surveys/rate/{purchase.id}", {"score": "5"})
    assert late.status_code == 303
    assert services.rating_for(db.session, purchase.id) is None


def test_the_survey_csv_speaks_the_readers_language_and_has_a_stable_variant(client, shop, make_member):
    survey = make_survey(shop)
    member = make_member(shop)
    services.submit(db.session, survey, member.user, full_answers(survey))
    client.login(shop.owner)
    assert client.post_form("/account/locale", {"locale": "ru"}).status_code in (200, 303)
    people = client.get(f"{base(shop)}/{survey.id}/export.csv")
    text = people.get_data(as_text=True)
    assert people.status_code == 200 and text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:2] == ["Ответ", "Завершён"]
    assert rows[0][2:] == [q.text for q in survey.questions]
    assert len(rows) == 2 and len(rows[1][1]) == len("2026-01-31 10:05")  # local time, no seconds

    machine = client.get(f"{base(shop)}/{survey.id}/export.csv", query_string={"format": "machine"})
    assert f'filename="survey-{survey.id}-machine.csv"' in machine.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(machine.get_data(as_text=True))))
    assert rows[0][:2] == ["response", "completed_at"] and "T" in rows[1][1]
