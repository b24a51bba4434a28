"""The demo street gets topics, FAQ entries in the owners' language and two threads, once."""

from __future__ import annotations

from sqlalchemy import func, select

import neighbourly_demo as demo
from plugins.concierge.models import AskedQuestion, FaqEntry, QuestionTopic
from tests.core.test_demo import SMALL
from webapp.extensions import db


def _counts() -> dict[str, int]:
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (QuestionTopic, FaqEntry, AskedQuestion)
    }


def test_demo_content_is_in_the_owners_language_and_added_once(app):
    demo.load(echo=lambda line: None, **SMALL)
    counts = _counts()
    assert all(counts.values()), counts
    questions = set(db.session.scalars(select(FaqEntry.question)))
    assert "Когда вы открыты?" in questions and "When are you open?" not in questions
    answered = db.session.scalars(
        select(AskedQuestion).where(AskedQuestion.first_answer_at.is_not(None))
    ).all()
    assert answered and all(q.status == "answered" for q in answered)
    demo.load(echo=lambda line: None, **SMALL)
    assert _counts() == counts
