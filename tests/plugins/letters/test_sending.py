"""Letters by e-mail: real SMTP delivery, once per purchase, consent, unsubscribe, reassurance."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

from sqlalchemy import func, select

from plugins.letters import delivery, services
from plugins.letters.models import BonusCode, Letter
from plugins.letters.tasks import SCHEDULED_LETTER
from tests.kit import enable_plugins
from tests.plugins.letters.conftest import buy, set_letters
from webapp import outbox, tasks
from webapp.extensions import db
from webapp.models import Membership, Merchant, OutboxMessage, Purchase
from webapp.models.base import utcnow
from webapp.services import memberships
from webapp.tasks import queue_committed


def letters(kind=None):
    query = select(Letter).order_by(Letter.id)
    if kind:
        query = query.where(Letter.kind == kind)
    return list(db.session.scalars(query))


def test_thank_you_email_arrives_with_sender_name_unsubscribe_and_both_parts(shop, customer, smtp):
    purchase = buy(shop, customer)
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == "aigerim@example.com"
    assert message["From"].addresses[0].display_name == "Corner Bakery"
    assert message["Subject"] == "Thank you for your visit, Aigerim!"
    unsubscribe = re.fullmatch(r"<(http://localhost/letters/unsubscribe/\S+)>", message["List-Unsubscribe"].strip())
    assert unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Dear Aigerim," in text and "Corner Bakery" in text and unsubscribe.group(1) in text
    assert "<p>Dear Aigerim,</p>" in html and unsubscribe.group(1) in html
    # The open pixel is off by default.
    assert "/letters/o/" not in html
    thanks = letters("thanks")
    assert [(x.purchase_id, x.channel, x.status) for x in thanks] == [(purchase.id, "email", "sent")]


def test_reassurance_is_scheduled_with_the_chosen_delay_and_sent_once(shop, customer, smtp):
    set_letters(shop, reassurance_hours=5)
    before = utcnow()
    buy(shop, customer)
    reassurance = letters("reassurance")[0]
    assert reassurance.status == "scheduled"
    assert timedelta(hours=5) <= reassurance.due_at - before < timedelta(hours=5, minutes=1)
    # It waits in the outbox (and on the queue's schedule) until it falls due.
    (message,) = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == SCHEDULED_LETTER)).all()
    assert message.payload == {"letter_id": reassurance.id} and message.done_at is None
    assert timedelta(hours=4, minutes=59) < message.due_at - utcnow() < timedelta(hours=5, minutes=1)
    assert [task.args for task in tasks.queue().scheduled()] == [([message.id],)]
    assert not outbox.run_message(db.session, message.id)  # not due yet
    # Run it as the worker would when the time comes, and again as a second delivery would.
    due = message.due_at + timedelta(seconds=1)
    assert outbox.run_message(db.session, message.id, now=due)
    assert not outbox.run_message(db.session, message.id, now=due)
    assert delivery.send_scheduled(reassurance.id) is False
    assert [m["Subject"] for m in smtp.messages] == [
        "Thank you for your visit, Aigerim!", "How are you getting on, Aigerim?",
    ]
    db.session.expire_all()
    assert db.session.get(Letter, reassurance.id).status == "sent"


def test_running_the_hook_again_sends_nothing_more(shop, customer, smtp):
    purchase = buy(shop, customer)
    for _ in range(3):  # the outbox delivers at least once: the hook's work is delivered again
        queue_committed(db.session, shop, "purchase", purchase.id)
        db.session.commit()
    assert db.session.scalar(
        select(func.count(OutboxMessage.id)).where(OutboxMessage.payload["plugin"].as_string() == "letters",
                                                    OutboxMessage.done_at.is_not(None))
    ) == 4
    assert len(smtp.messages) == 1
    assert db.session.scalar(select(func.count(Letter.id))) == 2  # thanks + reassurance


def test_two_workers_at_once_send_one_letter(app, shop, customer, smtp):
    # The purchase happens before consent, so no letter yet; then two workers race on it.
    memberships.withdraw_consent(db.session, customer.user, shop, memberships.MARKETING, "test")
    purchase = buy(shop, customer)
    assert smtp.messages == []
    memberships.grant_consent(db.session, customer.user, shop, memberships.MARKETING, "test")
    # Plain ids: touching the test's ORM objects from a thread would use the test's session.
    shop_id, purchase_id = shop.id, purchase.id
    for round_number in range(3):
        db.session.execute(Letter.__table__.delete())
        db.session.commit()
        tasks.queue().storage.flush_schedule()
        barrier = threading.Barrier(2)
        outcomes = []

        def worker():
            with app.app_context():
                merchant = db.session.get(Merchant, shop_id)
                loaded = db.session.get(Purchase, purchase_id)
                loaded.membership.user  # noqa: B018  (load before racing)
                db.session.commit()  # end the read: on SQLite every transaction holds the write lock
                barrier.wait()
                outcomes.append(len(delivery.on_purchase_committed(merchant, loaded)))
                db.session.commit()  # as the outbox runner commits the hook's work
                db.session.remove()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == [0, 2], outcomes
        assert len(smtp.messages) == round_number + 1


def test_no_marketing_consent_means_no_letter(shop, make_member, smtp):
    membership = make_member(shop)  # joined without ticking marketing
    buy(shop, membership)
    assert smtp.messages == []
    assert letters() == []


def test_withdrawn_consent_cancels_the_scheduled_reassurance(shop, customer, smtp):
    buy(shop, customer)
    reassurance = letters("reassurance")[0]
    memberships.withdraw_consent(db.session, customer.user, shop, memberships.MARKETING, "test")
    assert delivery.send_scheduled(reassurance.id) is False
    assert len(smtp.messages) == 1
    db.session.expire_all()
    assert db.session.get(Letter, reassurance.id).status == "cancelled"


def test_unsubscribe_link_works_without_signing_in_and_stops_mail(shop, customer, smtp, client):
    buy(shop, customer)
    link = re.search(r"<http://localhost(\S+)>", smtp.messages[0]["List-Unsubscribe"]).group(1)
    page = client.get(link)
    assert page.status_code == 200 and "Stop receiving" in page.get_data(as_text=True)
    # A mail client's one-click POST carries no CSRF token and no session.
    response = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "You are unsubscribed" in response.get_data(as_text=True)
    assert not memberships.has_consent(db.session, customer.user_id, shop.id, memberships.MARKETING)
    buy(shop, customer)
    assert len(smtp.messages) == 1
    # A forged or altered token is refused.
    assert client.get(link[:-3] + "abc").status_code == 404
    assert client.post("/letters/unsubscribe/not-a-token").status_code == 404


def test_a_bonus_code_goes_into_one_letter_only(shop, customer, make_member, make_user, smtp):
    services.add_codes(db.session, shop, "cinema", "Kino Star", "SEAT-1\nSEAT-1\n")
    services.save_template(
        db.session, shop, "thanks", "Thanks {first_name}", "Your ticket: {bonus_code} from {bonus_partner}.",
        "cinema",
    )
    buy(shop, customer)
    other = make_member(shop, user=make_user(name="Daniyar"))
    memberships.grant_consent(db.session, other.user, shop, memberships.MARKETING, "test")
    buy(shop, other)
    bodies = [m.get_body(("plain",)).get_content() for m in smtp.messages]
    assert "Your ticket: SEAT-1 from Kino Star." in bodies[0]
    # The pool is empty for the second letter: its sentence is left out, not printed half empty.
    assert "SEAT-1" not in bodies[1] and "Your ticket" not in bodies[1]
    code = db.session.scalar(select(BonusCode))
    assert code.letter_id == letters("thanks")[0].id and code.used_at is not None


def test_bonus_code_claim_is_guarded(shop, customer):
    services.add_codes(db.session, shop, "coffee", "", "A\nB")
    first, second = buy(shop, customer), buy(shop, customer)
    letter_ids = [x.id for x in letters("thanks")]
    assert services.claim_bonus_code(db.session, shop.id, "coffee", letter_ids[0]).code == "A"
    assert services.claim_bonus_code(db.session, shop.id, "coffee", letter_ids[1]).code == "B"
    assert services.claim_bonus_code(db.session, shop.id, "coffee", letter_ids[1]) is None
    assert first.id != second.id


def test_merchant_text_cannot_inject_html_into_the_email(shop, make_user, make_member, smtp):
    xss = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    user = make_user(name="<i>Eve</i>", email="eve@example.com")
    membership = make_member(shop, user=user)
    memberships.grant_consent(db.session, user, shop, memberships.MARKETING, "test")
    services.save_template(db.session, shop, "thanks", "Hi {first_name}" + xss, xss + "\n{first_name}", "")
    buy(shop, membership)
    html = smtp.messages[0].get_body(("html",)).get_content()
    assert "<script>" not in html and "<img src=x" not in html and "<i>Eve" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;i&gt;Eve&lt;/i&gt;" in html
    assert "\n" not in smtp.messages[0]["Subject"]


def test_we_miss_you_goes_once_after_n_days(shop, customer, smtp):
    set_letters(shop, winback_days=30, reassurance_email=False)
    buy(shop, customer)
    assert len(smtp.messages) == 1
    membership = db.session.get(Membership, customer.id)
    now = utcnow()
    assert delivery.run_periodic(now + timedelta(days=29)) == 0
    assert delivery.run_periodic(now + timedelta(days=31)) == 1
    assert delivery.run_periodic(now + timedelta(days=32)) == 0
    assert smtp.messages[-1]["Subject"] == "We miss you, Aigerim"
    assert f"/wallet/cards/{membership.id}" in smtp.messages[-1].get_body(("plain",)).get_content()


def test_periodic_sweep_sends_a_reassurance_whose_queue_entry_was_lost(shop, customer, smtp):
    buy(shop, customer)
    tasks.queue().storage.flush_schedule()  # the queue lost it
    assert delivery.run_periodic(utcnow() + timedelta(hours=21)) == 1
    assert smtp.messages[-1]["Subject"] == "How are you getting on, Aigerim?"
    assert delivery.run_periodic(utcnow() + timedelta(hours=22)) == 0


def test_russian_network_gets_russian_defaults(make_network, make_merchant, make_user, make_member, smtp):
    network = make_network(name="Улица")
    network.default_locale = "ru"
    db.session.commit()
    merchant = make_merchant(name="Пекарня", in_network=network)

    enable_plugins(merchant, "letters")
    user = make_user(name="Әсел Нұрлан", locale="ru")
    membership = make_member(merchant, user=user)
    memberships.grant_consent(db.session, user, merchant, memberships.MARKETING, "test")
    buy(merchant, membership)
    message = smtp.messages[0]
    assert message["Subject"] == "Спасибо за визит, Әсел!"
    text = message.get_body(("plain",)).get_content()
    assert "Здравствуйте, Әсел!" in text and "Отписаться" in text or "Unsubscribe" in text


def test_status_and_certificate_placeholders_come_from_other_plugins_facts(app, make_merchant, make_member):
    """A plugin offers facts through the core hook; letters fill {status} and {certificate} from them."""
    import types

    from plugins.letters import delivery
    from webapp.contracts import CustomerFact
    from webapp.plugins import hookimpl

    merchant = make_merchant()
    member = make_member(merchant)
    facts_plugin = types.ModuleType("facts_for_letters")

    @hookimpl
    def neighbourly_collect_customer_facts(merchant, membership, purchase):
        return [
            CustomerFact("status", "Gold", source="facts"),
            CustomerFact("certificate", "Certificate ₸500 at Café Lipa", source="facts"),
        ]

    facts_plugin.neighbourly_collect_customer_facts = neighbourly_collect_customer_facts
    registry = app.extensions["neighbourly"]
    registry.pm.register(facts_plugin, name="facts")  # core-scoped for this test: always called
    try:
        context = delivery.letter_context(merchant, member, None)
    finally:
        registry.pm.unregister(facts_plugin)
    assert context["status"] == "Gold"
    assert context["certificate"] == "Certificate ₸500 at Café Lipa"
    assert delivery.letter_context(merchant, member, None)["status"] == ""


def test_letters_follow_each_customers_language_then_the_networks(make_network, make_merchant, make_user, make_member, smtp):
    network = make_network(name="Vitosha")
    network.default_locale = "kk"
    db.session.commit()
    merchant = make_merchant(name="Хлебарница", in_network=network)

    enable_plugins(merchant, "letters")
    for name, email, locale in (("Мария Петрова", "maria@example.com", "bg"), ("Әсел Нұрлан", "asel@example.com", None)):
        user = make_user(name=name, email=email, locale=locale)
        membership = make_member(merchant, user=user)
        memberships.grant_consent(db.session, user, merchant, memberships.MARKETING, "test")
        buy(merchant, membership, amount=1_234_500)
    by_reader = {message["To"]: message for message in smtp.messages}
    bulgarian = by_reader["maria@example.com"]
    assert bulgarian["Subject"].strip() == "Благодарим ви за посещението, Мария!"  # a long header is folded
    text = bulgarian.get_body(("plain",)).get_content()
    assert "С покупката си за 12\xa0345\xa0₸ спечелихте" in text  # whole tenge: no ",00"
    assert "Получавате това писмо, защото сте се съгласили" in text and "Отписване:" in text
    assert '<html lang="bg">' in bulgarian.get_body(("html",)).get_content()
    kazakh = by_reader["asel@example.com"]  # no language of her own: the network's
    assert kazakh["Subject"].strip() == "Келгеніңізге рақмет, Әсел!"
    assert "Сіз бұл хатты Хлебарница хабарламаларына келісім бергендіктен алдыңыз." in kazakh.get_body(("plain",)).get_content()


def test_a_merchants_own_wording_is_sent_as_written_in_every_language(shop, make_user, make_member, smtp):
    services.save_template(db.session, shop, "thanks", "Thanks from the corner, {first_name}", "See you soon, {first_name}.", "")
    user = make_user(name="Мария Петрова", email="maria@example.com", locale="bg")
    membership = make_member(shop, user=user)
    memberships.grant_consent(db.session, user, shop, memberships.MARKETING, "test")
    buy(shop, membership)
    [message] = smtp.messages
    assert message["Subject"].strip() == "Thanks from the corner, Мария"
    assert "Отписване:" in message.get_body(("plain",)).get_content()  # the frame is still hers


def test_a_thank_you_that_fails_after_its_log_row_leaves_nothing_and_the_retry_sends_it_once(
    shop, customer, smtp, monkeypatch
):
    """The log row, the e-mail and the outbox message's completion are one unit of work: a
    failure after the row was written rolls all of it back, so the retry is not mistaken for a
    letter already sent (and a second run after success sends nothing)."""
    failing = {"on": True}
    real_send = delivery.send_letter_email

    def send_then_fail(letter, merchant, membership):
        real_send(letter, merchant, membership)
        if failing["on"]:
            raise RuntimeError("the worker dies after queueing the e-mail")

    monkeypatch.setattr(delivery, "send_letter_email", send_then_fail)
    purchase = buy(shop, customer)  # the worker's first attempt fails
    assert letters("thanks") == [] and smtp.messages == []
    (message,) = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.kind == "committed", OutboxMessage.payload["plugin"].as_string() == "letters"
    )).all()
    assert message.done_at is None and message.attempts == 1
    failing["on"] = False
    retry_at = message.due_at + timedelta(seconds=1)
    assert outbox.run_message(db.session, message.id, now=retry_at)
    assert not outbox.run_message(db.session, message.id, now=retry_at)
    assert [(x.purchase_id, x.status) for x in letters("thanks")] == [(purchase.id, "sent")]
    assert [m["Subject"] for m in smtp.messages] == ["Thank you for your visit, Aigerim!"]
