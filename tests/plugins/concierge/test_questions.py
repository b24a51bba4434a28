"""Questions routed by topic, staff threads and permissions, the customer's notifications, the
owner's figures and FAQ entries made from answers, guests with an e-mail and their rate limit,
bad input, and the plugin switched off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from plugins.concierge import services
from plugins.concierge.models import AskedQuestion, FaqEntry, ThreadMessage
from tests.kit import disable_plugins, enable_plugins
from tests.plugins.concierge.conftest import sent_mail
from webapp.extensions import db
from webapp.models import User
from webapp.models.base import utcnow

WALLET_CARD = "/wallet/cards/{}"


def ask_url(shop, tail=""):
    return f"/m/{shop.slug}/ask{tail}"


def staff_url(shop, tail=""):
    return f"/business/{shop.slug}/questions/{tail}"


def test_a_question_is_routed_by_topic_and_its_person_is_mailed_once(
    app, client, shop, cashier, make_member
):
    hours = services.save_topic(db.session, shop, "Opening hours", None)
    orders = services.save_topic(db.session, shop, "Orders", str(cashier.id))
    member = make_member(shop)
    client.login(member.user)
    form = {
        "text": "Can I order a cake?",
        "topic": str(orders.id),
        "token": "form-1",
        "notify": "1",
    }
    assert client.post_form(ask_url(shop), form).status_code == 303
    assert client.post_form(ask_url(shop), form).status_code == 303  # the same form again
    questions = list(db.session.scalars(select(AskedQuestion)))
    assert (
        len(questions) == 1
        and questions[0].assignee_id == cashier.id
        and questions[0].topic_id == orders.id
    )
    to_cashier = [m for m in sent_mail(app) if m.to == [cashier.email]]
    assert len(to_cashier) == 1 and "Can I order a cake?" in to_cashier[0].body
    client.post_form(
        ask_url(shop), {"text": "When do you open?", "topic": str(hours.id), "token": "form-2"}
    )
    general = db.session.scalar(select(AskedQuestion).where(AskedQuestion.token == "form-2"))
    assert general.assignee_id == shop.owner.id  # a topic without a person: the owner
    client.post_form(ask_url(shop), {"text": "Anything else?", "token": "form-3"})
    assert (
        db.session.scalar(select(AskedQuestion).where(AskedQuestion.token == "form-3")).assignee_id
        == shop.owner.id
    )


def test_the_assigned_cashier_answers_and_the_customer_sees_it(
    app, client, shop, cashier, make_member, make_user
):
    orders = services.save_topic(db.session, shop, "Orders", str(cashier.id))
    member = make_member(shop, make_user(locale="ru"))
    question = services.ask(
        db.session,
        shop,
        services.Asker(user=member.user),
        "Торт на субботу?",
        topic_id=orders.id,
        notify=True,
        locale="ru",
    )
    client.login(cashier)
    page = client.get(staff_url(shop)).get_data(as_text=True)
    assert "Торт на субботу?" in page
    response = client.post_form(
        staff_url(shop, str(question.id)), {"text": "Yes, see https://cake.example", "token": "a1"}
    )
    assert response.status_code == 303
    client.post_form(
        staff_url(shop, str(question.id)), {"text": "Yes, see https://cake.example", "token": "a1"}
    )
    db.session.expire_all()
    question = db.session.get(AskedQuestion, question.id)
    assert (
        question.status == "answered" and question.unread and question.first_answer_at is not None
    )
    assert (
        db.session.scalar(
            select(func.count(ThreadMessage.id)).where(ThreadMessage.question_id == question.id)
        )
        == 2
    )
    to_customer = [m for m in sent_mail(app) if m.to == [member.user.email]]
    assert len(to_customer) == 1 and "Yes, see https://cake.example" in to_customer[0].body
    assert "ответил на ваш вопрос" in to_customer[0].subject  # in the customer's language
    assert "Corner Bakery" in to_customer[0].subject
    client.post_form("/auth/logout")
    client.login(member.user)
    wallet = client.get(WALLET_CARD.format(member.id)).get_data(as_text=True)
    assert "Спросить Corner Bakery" in wallet
    assert "1 новый ответ на ваш вопрос" in client.get("/wallet/").get_data(as_text=True)
    thread = client.get(ask_url(shop, f"/{question.id}")).get_data(as_text=True)
    assert 'href="https://cake.example" rel="nofollow noopener noreferrer"' in thread
    db.session.expire_all()
    assert db.session.get(AskedQuestion, question.id).unread is False


def test_without_consent_no_mail_goes_to_the_customer(app, shop, make_member):
    member = make_member(shop)
    question = services.ask(
        db.session, shop, services.Asker(user=member.user), "Parking?", notify=False
    )
    services.reply(db.session, shop, question, shop.owner, "Behind the shop.")
    assert not [m for m in sent_mail(app) if m.to == [member.user.email]]


def test_cashiers_see_only_their_topics_of_their_merchant(
    client, shop, cashier, make_merchant, make_member, make_user
):
    mine = services.save_topic(db.session, shop, "Orders", str(cashier.id))
    theirs = services.save_topic(db.session, shop, "Hours", None)
    member = make_member(shop)
    routed = services.ask(
        db.session, shop, services.Asker(user=member.user), "Order?", topic_id=mine.id
    )
    other_topic = services.ask(
        db.session, shop, services.Asker(user=member.user), "Hours?", topic_id=theirs.id
    )
    other_cashier = make_user(name="Other cashier")
    other_shop = make_merchant(name="Florist", cashiers=[other_cashier])
    enable_plugins(other_shop, "concierge")
    client.login(cashier)
    page = client.get(staff_url(shop)).get_data(as_text=True)
    assert "Order?" in page and "Hours?" not in page
    assert client.get(staff_url(shop, str(routed.id))).status_code == 200
    assert client.get(staff_url(shop, str(other_topic.id))).status_code == 404
    assert (
        client.post_form(staff_url(shop, str(other_topic.id)), {"text": "sneaky"}).status_code
        == 404
    )
    assert client.get(staff_url(shop, "topics")).status_code == 404  # owner only
    assert client.get(staff_url(shop, "faq")).status_code == 404
    client.post_form("/auth/logout")
    client.login(other_cashier)
    assert client.get(staff_url(shop)).status_code == 404
    assert client.get(staff_url(shop, str(routed.id))).status_code == 404
    assert (
        client.get(staff_url(other_shop, str(routed.id))).status_code == 404
    )  # another merchant's question
    # A customer sees only their own thread.
    client.post_form("/auth/logout")
    client.login(make_member(shop).user)
    assert client.get(ask_url(shop, f"/{routed.id}")).status_code == 404


def test_time_to_first_answer_and_faq_picks_for_the_owner(client, shop, make_member):
    member = make_member(shop)
    start = utcnow() - timedelta(hours=3)
    for number, minutes in enumerate((10, 20, 90)):
        question = services.ask(
            db.session, shop, services.Asker(user=member.user), f"Q{number}", now=start
        )
        services.reply(
            db.session, shop, question, shop.owner, "A", now=start + timedelta(minutes=minutes)
        )
        services.reply(
            db.session,
            shop,
            question,
            shop.owner,
            "later",
            now=start + timedelta(minutes=minutes + 500),
        )
    services.ask(db.session, shop, services.Asker(user=member.user), "still open")
    entry = services.save_faq(db.session, shop, "Parking?", "Behind the shop.", "en")
    services.pick_faq(db.session, shop, entry.id)
    services.pick_faq(db.session, shop, entry.id)
    figures = services.figures(db.session, shop)
    assert figures.open == 1 and figures.answered == 3
    assert figures.median_minutes == pytest.approx(20) and figures.average_minutes == pytest.approx(
        40
    )
    assert figures.faq_answered == 2
    client.login(shop.owner)
    page = client.get(staff_url(shop)).get_data(as_text=True)
    assert "20 min" in page and "40 min" in page


def test_the_owner_turns_an_answer_into_an_faq_entry(client, shop, make_member, cashier):
    member = make_member(shop)
    question = services.ask(
        db.session, shop, services.Asker(user=member.user), "Do you have oat milk?"
    )
    message = services.reply(db.session, shop, question, shop.owner, "Yes, and almond milk too.")
    client.login(cashier)
    assert client.post_form(staff_url(shop, f"messages/{message.id}/faq")).status_code == 404
    client.post_form("/auth/logout")
    client.login(shop.owner)
    assert client.post_form(staff_url(shop, f"messages/{message.id}/faq")).status_code == 303
    entry = db.session.scalar(select(FaqEntry))
    assert entry.question == "Do you have oat milk?" and entry.answer == "Yes, and almond milk too."
    assert entry.source_message_id == message.id


def test_faq_crud_and_bad_input(client, shop):
    client.login(shop.owner)
    response = client.post_form(staff_url(shop, "faq"), {"question": "", "answer": "x" * 2001})
    assert response.status_code == 422 and db.session.scalar(select(FaqEntry.id)) is None
    page = response.get_data(as_text=True)
    assert "At most 2000 characters" in page or "2,000" in page or "2000" in page
    response = client.post_form(
        staff_url(shop, "faq"),
        {"question": "Hours?", "answer": "9 to 9 <b>daily</b>", "language": "xx"},
    )
    assert response.status_code == 303
    entry = db.session.scalar(select(FaqEntry))
    assert entry.language == shop.network.default_locale
    listing = client.get(staff_url(shop, "faq")).get_data(as_text=True)
    assert "&lt;b&gt;daily&lt;/b&gt;" in listing and "<b>daily</b>" not in listing
    assert (
        client.post_form(
            staff_url(shop, f"faq/{entry.id}"), {"question": "Hours", "answer": "9-21"}
        ).status_code
        == 303
    )
    assert (
        client.post_form(
            staff_url(shop, "faq/99999"), {"question": "Hours", "answer": "9-21"}
        ).status_code
        == 404
    )
    assert client.post_form(staff_url(shop, f"faq/{entry.id}/delete")).status_code == 303
    assert db.session.scalar(select(FaqEntry.id)) is None


def test_questions_refuse_bad_input_with_nothing_written(client, shop, make_member):
    member = make_member(shop)
    client.login(member.user)
    for form in (
        {"text": ""},
        {"text": "   \x00 "},
        {"text": "x" * 2001},
        {"text": "fine", "topic": "999999"},
        {"text": "fine", "topic": "abc"},
    ):
        response = client.post_form(ask_url(shop), form)
        assert response.status_code == 422, form
    assert db.session.scalar(select(func.count(AskedQuestion.id))) == 0
    assert client.post_form(ask_url(shop), {"text": "x" * 2000, "token": "long"}).status_code == 303
    assert client.post_form(ask_url(shop, "/faq/abc/pick")).status_code == 404
    assert client.get(ask_url(shop, "/suggest?text=" + "%00" * 10)).status_code == 200


def test_guests_ask_with_an_email_and_are_rate_limited(app, client, shop):
    app.config["CONCIERGE_GUEST_LIMITS"] = "2 per minute"
    assert (
        client.post_form(ask_url(shop), {"text": "Open on Sunday?"}).status_code == 422
    )  # no e-mail
    assert (
        client.post_form(ask_url(shop), {"text": "Open?", "email": "not-an-email"}).status_code
        == 422
    )
    assert db.session.scalar(select(func.count(AskedQuestion.id))) == 0
    for number in range(2):  # refused forms do not count: two questions go through
        form = {
            "text": f"Open on Sunday {number}?",
            "email": "guest@example.com",
            "token": f"guest-{number}",
        }
        assert client.post_form(ask_url(shop), form).status_code == 303
    response = client.post_form(
        ask_url(shop), {"text": "And Monday?", "email": "guest@example.com"}
    )
    assert response.status_code == 429
    assert db.session.scalar(select(func.count(AskedQuestion.id))) == 2
    question = db.session.scalar(select(AskedQuestion).where(AskedQuestion.token == "guest-0"))
    assert (
        question.guest_email == "guest@example.com"
        and question.user_id is None
        and question.notify_email
    )
    services.reply(db.session, shop, question, shop.owner, "Yes, from 10.")
    assert [m for m in sent_mail(app) if m.to == ["guest@example.com"]]


def test_the_plugin_switched_off_answers_404(client, shop, make_member):
    member = make_member(shop)
    question = services.ask(db.session, shop, services.Asker(user=member.user), "Hello?")
    disable_plugins(shop, "concierge")
    client.login(shop.owner)
    assert client.get(staff_url(shop)).status_code == 404
    assert client.get(ask_url(shop)).status_code == 404
    assert client.get(staff_url(shop, str(question.id))).status_code == 404


def test_a_topic_given_to_someone_else_takes_its_open_questions_along(
    client, shop, cashier, make_member
):
    topic = services.save_topic(db.session, shop, "Orders", None)
    member = make_member(shop)
    waiting = services.ask(
        db.session, shop, services.Asker(user=member.user), "Cake?", topic_id=topic.id
    )
    done = services.ask(
        db.session, shop, services.Asker(user=member.user), "Bread?", topic_id=topic.id
    )
    services.reply(db.session, shop, done, shop.owner, "Yes.")
    client.login(shop.owner)
    response = client.post_form(
        staff_url(shop, f"topics/{topic.id}"), {"name": "Orders", "assignee": str(cashier.id)}
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(AskedQuestion, waiting.id).assignee_id == cashier.id
    assert db.session.get(AskedQuestion, done.id).assignee_id == shop.owner.id
    response = client.post_form(
        staff_url(shop, f"topics/{topic.id}"), {"name": "Orders", "assignee": "999999"}
    )
    assert response.status_code == 422 and "Choose someone who works here." in response.get_data(
        as_text=True
    )
    assert (
        client.post_form(
            staff_url(shop, "topics"), {"name": " Orders ", "assignee": ""}
        ).status_code
        == 422
    )


def test_a_new_question_is_a_webhook_event_once(shop, make_member):
    from webapp.models.webhooks import WebhookDelivery
    from webapp.services import webhooks

    assert "question.asked" in [event.name for event in webhooks.event_types(shop)]
    webhooks.create_endpoint(
        db.session,
        shop,
        url="http://127.0.0.1:9/hook",
        events=["question.asked"],
        created_by_id=shop.owner.id,
    )
    member = make_member(shop)
    for _attempt in range(2):  # the same form twice: one question, one event
        question = services.ask(
            db.session, shop, services.Asker(user=member.user), "Cake?", token="t-1"
        )
    deliveries = db.session.scalars(select(WebhookDelivery)).all()
    assert [d.event for d in deliveries] == ["question.asked"]
    assert (
        f'"id": {question.id}' in deliveries[0].body or f'"id":{question.id}' in deliveries[0].body
    )


def test_an_erased_customer_leaves_no_words_and_no_link(app, shop, make_member):
    from webapp.services import privacy

    member = make_member(shop)
    question = services.ask(
        db.session,
        shop,
        services.Asker(user=member.user),
        "My phone is +7 701 000 0000",
        notify=True,
    )
    services.reply(db.session, shop, question, shop.owner, "We will call you.")
    exported = services.customer_export(db.session, member.user_id)
    assert exported[0]["messages"][0]["text"] == "My phone is +7 701 000 0000"
    privacy.erase_customer(db.session, db.session.get(User, member.user_id))
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(AskedQuestion, question.id)
    assert stored.user_id is None and "701" not in stored.text and not stored.notify_email
    assert all("701" not in message.text for message in stored.messages)
    assert services.customer_export(db.session, member.user_id) == []


def test_faq_text_with_markup_and_script_links_stays_inert_on_the_pages(client, shop):
    services.save_faq(
        db.session,
        shop,
        "Menu <img src=x onerror=alert(1)>?",
        "See javascript:alert(1) or https://menu.example/?q=<script>",
        "en",
    )
    fragment = client.get(f"/m/{shop.slug}/ask/suggest?text=menu", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert "<img" not in html and "<script>" not in html and 'href="javascript' not in html
    assert '<a href="https://menu.example/?q=" rel="nofollow noopener noreferrer"' in html
