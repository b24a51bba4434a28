"""The concierge tables: topics with their staff member, FAQ entries, questions and their messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.plugin_api import UTCDateTime, db, utcnow

MAX_TEXT = 2000
MAX_TOPIC = 80
MAX_FAQ_QUESTION = 300
QUESTION_STATUSES = ("open", "answered", "closed")


class QuestionTopic(db.Model):
    """What a question is about; questions of a topic go to its staff member (the owner when unset)."""

    __tablename__ = "concierge_topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    name: Mapped[str] = mapped_column(String(MAX_TOPIC))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("merchant_id", "name"),)


class FaqEntry(db.Model):
    """A ready answer: found by full-text search while a customer types; ``picks`` counts the
    questions it answered (a guarded ``UPDATE picks = picks + 1``)."""

    __tablename__ = "concierge_faq"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    question: Mapped[str] = mapped_column(String(MAX_FAQ_QUESTION))
    answer: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(10), default="en")
    picks: Mapped[int] = mapped_column(default=0)
    # The staff message this entry was made from, when it was.
    source_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("concierge_messages.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("picks >= 0", name="picks_not_negative"),
        Index("ix_concierge_faq_merchant", "merchant_id"),
    )


class AskedQuestion(db.Model):
    """A customer's (or a guest's) question, routed to a staff member by its topic."""

    __tablename__ = "concierge_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    topic_id: Mapped[int | None] = mapped_column(
        ForeignKey("concierge_topics.id", ondelete="SET NULL")
    )
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Emptied when the asker's account is erased.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    guest_email: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(10), default="en")
    notify_email: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text)
    # The form's one-time token: sending the same form twice stores one question.
    token: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10), default="open")
    unread: Mapped[bool] = mapped_column(Boolean, default=False)  # an answer the asker has not seen
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_answer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    messages: Mapped[list[ThreadMessage]] = relationship(
        order_by="ThreadMessage.id", cascade="all, delete-orphan"
    )
    topic: Mapped[QuestionTopic | None] = relationship()

    __table_args__ = (
        UniqueConstraint("merchant_id", "token"),
        CheckConstraint("status IN ('open', 'answered', 'closed')", name="status_known"),
        CheckConstraint("user_id IS NOT NULL OR guest_email IS NOT NULL", name="has_asker"),
        Index("ix_concierge_questions_merchant_status", "merchant_id", "status"),
        Index("ix_concierge_questions_assignee", "assignee_id", "status"),
        Index("ix_concierge_questions_user", "user_id"),
    )


class ThreadMessage(db.Model):
    """One message of a thread: the customer's (``from_staff`` false) or a staff member's."""

    __tablename__ = "concierge_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(
        ForeignKey("concierge_questions.id", ondelete="CASCADE")
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    from_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text)
    token: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("question_id", "token"),
        Index("ix_concierge_messages_question", "question_id"),
    )
