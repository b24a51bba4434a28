"""The surveys plugin's tables: surveys, questions, responses, answers, invitations, ratings, complaints."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.plugin_api import UTCDateTime, db, utcnow

MAX_TITLE = 120
MAX_QUESTION = 300
MAX_SHORT = 200
MAX_LONG = 2000
MAX_CHOICES = 12
MAX_CHOICE = 100
MAX_COMMENT = 1000
MAX_MESSAGE = 2000

QUESTION_KINDS = ("rating", "single", "multiple", "short", "long", "nps")
AUDIENCES = ("all", "recent", "status")
MAX_STATUS = 60
MAX_OPTION_KEY = 80
MAX_REWARD_LABEL = 200


class Survey(db.Model):
    """A merchant's survey; ``completed_count`` only grows through a quota-guarded UPDATE."""

    __tablename__ = "surveys_surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    title: Mapped[str] = mapped_column(String(MAX_TITLE))
    intro: Mapped[str] = mapped_column(Text, default="")
    template: Mapped[str] = mapped_column(String(30), default="blank")
    status: Mapped[str] = mapped_column(String(10), default="draft")  # draft, open, closed
    reward_points: Mapped[int] = mapped_column(BigInteger, default=0)
    # A reward another plugin gives (a neighbour's certificate): its RewardOption key and label.
    reward_option: Mapped[str] = mapped_column(String(MAX_OPTION_KEY), default="")
    reward_label: Mapped[str] = mapped_column(String(MAX_REWARD_LABEL), default="")
    audience: Mapped[str] = mapped_column(String(10), default="all")
    audience_days: Mapped[int | None] = mapped_column(Integer)
    # A status level name, matched against the "status" customer fact (gamification, when on).
    audience_status: Mapped[str] = mapped_column(String(MAX_STATUS), default="")
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    quota: Mapped[int | None] = mapped_column(Integer)
    completed_count: Mapped[int] = mapped_column(Integer, default=0)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    token: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    questions: Mapped[list[Question]] = relationship(
        order_by="Question.position", back_populates="survey", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("reward_points >= 0", name="reward_not_negative"),
        CheckConstraint("quota IS NULL OR completed_count <= quota", name="quota_respected"),
    )


class Question(db.Model):
    """One question; ``choices`` holds one option per line for single and multiple choice."""

    __tablename__ = "surveys_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys_surveys.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(String(MAX_QUESTION))
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    choices: Mapped[str] = mapped_column(Text, default="")

    survey: Mapped[Survey] = relationship(back_populates="questions")

    @property
    def options(self) -> list[str]:
        return [line for line in self.choices.split("\n") if line.strip()]


class Response(db.Model):
    """One person's answers to one survey: started, then completed once (UNIQUE per person)."""

    __tablename__ = "surveys_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys_surveys.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(12), default="started")  # started, completed
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The reward promised when completed; paid now for members, on joining for non-members.
    reward_points: Mapped[int] = mapped_column(BigInteger, default=0)
    reward_option: Mapped[str] = mapped_column(String(MAX_OPTION_KEY), default="")
    reward_label: Mapped[str] = mapped_column(String(MAX_REWARD_LABEL), default="")
    reward_paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the other plugin gave (``GrantedReward.object_ref``), or when it could not any more.
    reward_ref: Mapped[str] = mapped_column(String(MAX_OPTION_KEY), default="")
    reward_missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answers_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    survey: Mapped[Survey] = relationship()

    __table_args__ = (
        UniqueConstraint("survey_id", "user_id"),
        Index("ix_surveys_responses_user", "user_id"),
    )


class Answer(db.Model):
    """One answer; numbers for rating/NPS, text for the rest (multiple choice: one option per line)."""

    __tablename__ = "surveys_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("surveys_responses.id"), index=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("surveys_questions.id"), index=True)
    number: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("response_id", "question_id"),)


class Invitation(db.Model):
    """A member invited to a survey after a purchase; one per person and survey."""

    __tablename__ = "surveys_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys_surveys.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    emailed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("survey_id", "user_id"),)


class Rating(db.Model):
    """"Rate this visit": one per purchase."""

    __tablename__ = "surveys_ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchases.id"), unique=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), index=True)
    cashier_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),)


class Complaint(db.Model):
    """A thread opened by a rating of 1-2; the apology bonus is paid at most once."""

    __tablename__ = "surveys_complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("surveys_ratings.id"), unique=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open, resolved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_answer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bonus_points: Mapped[int] = mapped_column(BigInteger, default=0)
    bonus_paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    rating: Mapped[Rating] = relationship()
    messages: Mapped[list[ComplaintMessage]] = relationship(order_by="ComplaintMessage.id")


class ComplaintMessage(db.Model):
    """One message in a complaint thread, from the merchant's staff or the customer."""

    __tablename__ = "surveys_complaint_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("surveys_complaints.id"), index=True)
    from_merchant: Mapped[bool] = mapped_column(Boolean, default=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
