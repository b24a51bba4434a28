"""The same question form sent by many threads at once stores one question and mails its staff
member once (real SMTP through aiosmtpd); picks released together are all counted. Repeated, on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from plugins.concierge import services
from plugins.concierge.models import AskedQuestion, FaqEntry
from tests.concurrency import race
from tests.kit import enable_plugins
from tests.smtp import SMTPSink
from webapp.extensions import db
from webapp.models import Merchant, User

THREADS = 10
REPEATS = 5

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("patient_sqlite")]


@pytest.fixture
def smtp():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def app_overrides(smtp):
    return {
        "PLUGINS": ["plugins.concierge"],
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp.port,
    }


@pytest.fixture
def shop(make_merchant, make_user):
    merchant = make_merchant(
        name="Corner Bakery", cashiers=[make_user(name="Kasym", email="kasym@example.com")]
    )
    enable_plugins(merchant, "concierge")
    return merchant


def test_one_form_sent_at_once_from_many_threads_is_one_question_and_one_mail(
    app, shop, make_member, smtp
):
    cashier_id = db.session.scalar(select(User.id).where(User.email == "kasym@example.com"))
    topic = services.save_topic(db.session, shop, "Orders", str(cashier_id))
    user_id = make_member(shop).user_id
    shop_id, topic_id = shop.id, topic.id
    for repeat in range(REPEATS):
        before = len(smtp.messages)
        token = f"form-{repeat}"

        def send(_thread: int, _round: int, token=token) -> int:
            merchant = db.session.get(Merchant, shop_id)
            asker = services.Asker(user=db.session.get(User, user_id))
            return services.ask(
                db.session, merchant, asker, "A cake for Saturday?", topic_id=topic_id, token=token
            ).id

        db.session.rollback()  # SQLite: this session must not hold the write lock during the race
        outcomes = race(app, THREADS, send)
        assert all(isinstance(outcome, int) for outcome in outcomes), outcomes
        assert len(set(outcomes)) == 1, repeat
        count = db.session.scalar(
            select(func.count(AskedQuestion.id)).where(AskedQuestion.token == token)
        )
        assert count == 1, repeat
        mails = smtp.messages[before:]
        assert len(mails) == 1 and mails[0]["To"] == "kasym@example.com", repeat


def test_picks_released_together_are_all_counted(app, shop):
    entry_id = services.save_faq(db.session, shop, "Parking?", "Behind the shop.", "en").id
    shop_id = shop.id

    def pick(_thread: int, _round: int) -> int:
        return services.pick_faq(db.session, db.session.get(Merchant, shop_id), entry_id).id

    db.session.rollback()
    outcomes = race(app, THREADS, pick, rounds=REPEATS)
    assert outcomes == [entry_id] * (THREADS * REPEATS)
    db.session.expire_all()
    assert db.session.get(FaqEntry, entry_id).picks == THREADS * REPEATS
