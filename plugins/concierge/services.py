"""Ask the merchant: topics and their staff member, the FAQ, questions routed by topic, threads,
notifications (through the outbox, in the reader's language) and the owner's figures."""

from __future__ import annotations

import re
import secrets
import statistics
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Integer, bindparam, func, literal, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from plugins.concierge import search
from plugins.concierge.models import (
    MAX_FAQ_QUESTION,
    MAX_TEXT,
    MAX_TOPIC,
    AskedQuestion,
    FaqEntry,
    QuestionTopic,
    ThreadMessage,
)
from webapp.plugin_api import (
    Merchant,
    NotFound,
    StaffRole,
    User,
    ValidationFailed,
    in_recipient_language,
    outbox,
    public_url,
    send_email,
    unit_of_work,
    utcnow,
)

PLUGIN_NAME = "concierge"
EVENT_ASKED = "question.asked"
MAX_TOKEN = 40
# Control characters other than line breaks and tabs never reach the database (NUL breaks PostgreSQL).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --------------------------------------------------------------------------- input


def clean_text(raw: str | None, *, limit: int = MAX_TEXT, field: str = "text") -> str:
    """Plain text as typed: control characters dropped, surrounding blanks trimmed, 1..limit chars."""
    text = _CONTROL.sub("", (raw or "").replace("\r\n", "\n")).strip()
    if not text:
        raise ValidationFailed(_("Please write something first."), field=field)
    if len(text) > limit:
        raise ValidationFailed(
            _(
                "At most %(limit)s characters, please (this has %(count)s).",
                limit=limit,
                count=len(text),
            ),
            field=field,
        )
    return text


def clean_email(raw: str | None) -> str:
    raw = _CONTROL.sub("", (raw or "")).strip()
    if not raw:
        raise ValidationFailed(
            _("Please give your e-mail so that we can answer you."), field="email"
        )
    try:
        return validate_email(raw[:255], check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValidationFailed(_("This is not a valid e-mail address."), field="email") from error


def clean_token(raw: str | None) -> str:
    token = "".join(ch for ch in (raw or "") if ch.isascii() and (ch.isalnum() or ch in "-_"))[
        :MAX_TOKEN
    ]
    return token or secrets.token_urlsafe(16)


def new_token() -> str:
    return secrets.token_urlsafe(16)


# --------------------------------------------------------------------------- staff and topics


def owner_id(session: Session, merchant_id: int) -> int | None:
    return session.scalar(
        select(StaffRole.user_id)
        .where(StaffRole.merchant_id == merchant_id, StaffRole.role == "owner")
        .order_by(StaffRole.id)
        .limit(1)
    )


def staff(session: Session, merchant_id: int) -> list[tuple[User, str]]:
    return list(
        session.execute(
            select(User, StaffRole.role)
            .join(StaffRole, StaffRole.user_id == User.id)
            .where(StaffRole.merchant_id == merchant_id)
            .order_by(StaffRole.role.desc(), User.name)
        ).all()
    )


def role_of(session: Session, merchant_id: int, user_id: int) -> str | None:
    return session.scalar(
        select(StaffRole.role).where(
            StaffRole.merchant_id == merchant_id, StaffRole.user_id == user_id
        )
    )


def topics(session: Session, merchant_id: int) -> list[QuestionTopic]:
    return list(
        session.scalars(
            select(QuestionTopic)
            .where(QuestionTopic.merchant_id == merchant_id)
            .order_by(QuestionTopic.name)
        )
    )


def _topic(session: Session, merchant: Merchant, topic_id) -> QuestionTopic:
    try:
        topic_id = int(topic_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    topic = session.scalar(
        select(QuestionTopic).where(
            QuestionTopic.id == topic_id, QuestionTopic.merchant_id == merchant.id
        )
    )
    if topic is None:
        raise NotFound()
    return topic


def _assignee(session: Session, merchant: Merchant, raw) -> int | None:
    """A staff member of this merchant, or None (the owner answers)."""
    if raw in (None, "", "owner"):
        return None
    try:
        user_id = int(raw)
    except (TypeError, ValueError):
        raise ValidationFailed(_("Choose someone who works here."), field="assignee") from None
    if role_of(session, merchant.id, user_id) is None:
        raise ValidationFailed(_("Choose someone who works here."), field="assignee")
    return user_id


def save_topic(
    session: Session, merchant: Merchant, name: str, assignee, topic_id=None
) -> QuestionTopic:
    name = " ".join(clean_text(name, limit=MAX_TOPIC, field="name").split())
    assignee_id = _assignee(session, merchant, assignee)
    topic = (
        _topic(session, merchant, topic_id)
        if topic_id is not None
        else QuestionTopic(merchant_id=merchant.id)
    )
    moved = topic.id is not None and topic.assignee_id != assignee_id
    try:
        with unit_of_work(session):
            topic.name, topic.assignee_id = name, assignee_id
            session.add(topic)
            session.flush()
            if moved:
                # The topic's unanswered questions follow it to its new person (answered ones stay put).
                session.execute(
                    update(AskedQuestion)
                    .where(AskedQuestion.topic_id == topic.id, AskedQuestion.status == "open")
                    .values(assignee_id=assignee_id or owner_id(session, merchant.id))
                    .execution_options(synchronize_session=False)
                )
    except IntegrityError:
        raise ValidationFailed(
            _("There is already a topic with this name."), field="name"
        ) from None
    return topic


def delete_topic(session: Session, merchant: Merchant, topic_id) -> None:
    topic = _topic(session, merchant, topic_id)
    with unit_of_work(session):
        session.execute(
            update(AskedQuestion).where(AskedQuestion.topic_id == topic.id).values(topic_id=None)
        )
        session.delete(topic)


# --------------------------------------------------------------------------- FAQ


def faq_entries(session: Session, merchant_id: int) -> list[FaqEntry]:
    return list(
        session.scalars(
            select(FaqEntry)
            .where(FaqEntry.merchant_id == merchant_id)
            .order_by(FaqEntry.picks.desc(), FaqEntry.id)
        )
    )


def faq_entry(session: Session, merchant_id: int, entry_id) -> FaqEntry:
    try:
        entry_id = int(entry_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    entry = session.scalar(
        select(FaqEntry).where(FaqEntry.id == entry_id, FaqEntry.merchant_id == merchant_id)
    )
    if entry is None:
        raise NotFound()
    return entry


def _language(raw: str | None, merchant: Merchant) -> str:
    languages = current_app.config["LANGUAGES"]
    if raw in languages:
        return raw
    return merchant.network.default_locale if merchant.network.default_locale in languages else "en"


def save_faq(
    session: Session,
    merchant: Merchant,
    question: str,
    answer: str,
    language: str | None = None,
    entry_id=None,
    source_message_id: int | None = None,
) -> FaqEntry:
    errors = {}
    try:
        question = clean_text(question, limit=MAX_FAQ_QUESTION, field="question")
    except ValidationFailed as error:
        errors["question"] = error.message
    try:
        answer = clean_text(answer, field="answer")
    except ValidationFailed as error:
        errors["answer"] = error.message
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    entry = (
        faq_entry(session, merchant.id, entry_id)
        if entry_id is not None
        else FaqEntry(merchant_id=merchant.id)
    )
    with unit_of_work(session):
        entry.question, entry.answer = question, answer
        entry.language = _language(language, merchant)
        entry.updated_at = utcnow()
        if source_message_id is not None:
            entry.source_message_id = source_message_id
        session.add(entry)
        session.flush()
        search.index_entry(session, entry)
    return entry


def delete_faq(session: Session, merchant: Merchant, entry_id) -> None:
    entry = faq_entry(session, merchant.id, entry_id)
    with unit_of_work(session):
        search.remove_entry(session, entry.id)
        session.delete(entry)


def faq_matches(
    session: Session, merchant: Merchant, query: str, languages: list[str], limit: int = 5
) -> list[FaqEntry]:
    """The merchant's FAQ entries matching what the customer typed, best first (full-text search in
    each of ``languages`` and of the entries' own languages, so either's inflections are found)."""
    written_in = session.scalars(
        select(FaqEntry.language).where(FaqEntry.merchant_id == merchant.id).distinct()
    ).all()
    if not written_in:  # no FAQ yet: nothing to search
        return []
    ids: list[int] = []
    # The customer's words are stemmed in the languages the FAQ is written in (an entry's words were
    # stemmed in its own language, so only those can match), the customer's and the network's first.
    written = set(written_in)
    for language in dict.fromkeys(
        [*(code for code in languages if code in written), *sorted(written)]
    ):
        for ref_id in search.search(session, merchant.id, query, language, limit=limit):
            if ref_id not in ids:
                ids.append(ref_id)
    if not ids:
        return []
    ids = ids[:limit]
    found = {
        entry.id: entry
        for entry in session.scalars(
            select(FaqEntry).where(FaqEntry.merchant_id == merchant.id, FaqEntry.id.in_(ids))
        )
    }
    return [found[ref_id] for ref_id in ids if ref_id in found]


def pick_faq(session: Session, merchant: Merchant, entry_id) -> FaqEntry:
    """A customer found their answer in this entry: count it (one guarded UPDATE)."""
    entry = faq_entry(session, merchant.id, entry_id)
    with unit_of_work(session):
        session.execute(
            update(FaqEntry)
            .where(FaqEntry.id == entry.id, FaqEntry.merchant_id == merchant.id)
            .values(picks=FaqEntry.picks + 1)
            .execution_options(synchronize_session=False)
        )
    session.refresh(entry)
    return entry


def faq_from_message(session: Session, merchant: Merchant, message_id) -> FaqEntry:
    """Turn a staff answer into an FAQ entry: the customer's first message is the question."""
    try:
        message_id = int(message_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    row = session.execute(
        select(ThreadMessage, AskedQuestion)
        .join(AskedQuestion, AskedQuestion.id == ThreadMessage.question_id)
        .where(
            ThreadMessage.id == message_id,
            ThreadMessage.from_staff.is_(True),
            AskedQuestion.merchant_id == merchant.id,
        )
    ).first()
    if row is None:
        raise NotFound()
    message, question = row
    asked = (
        question.text
        if len(question.text) <= MAX_FAQ_QUESTION
        else question.text[: MAX_FAQ_QUESTION - 1] + "…"
    )
    return save_faq(
        session, merchant, asked, message.text, question.locale, source_message_id=message.id
    )


# --------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class Asker:
    user: User | None = None
    guest_email: str | None = None


def ask(
    session: Session,
    merchant: Merchant,
    asker: Asker,
    text: str,
    topic_id=None,
    notify: bool = False,
    token: str | None = None,
    locale: str = "en",
    now: datetime | None = None,
    send_mail: bool = True,
) -> AskedQuestion:
    """Store a question and route it by its topic to that topic's staff member (the owner when the
    topic has none or no topic was chosen); the assignee is e-mailed after the commit (outbox).

    The form's ``token`` makes it idempotent: sending the same form again returns the stored
    question and e-mails nobody a second time.
    """
    errors = {}
    try:
        text = clean_text(text)
    except ValidationFailed as error:
        errors["text"] = error.message
    guest_email = None
    if asker.user is None:
        try:
            guest_email = clean_email(asker.guest_email)
        except ValidationFailed as error:
            errors["email"] = error.message
    topic = None
    if topic_id not in (None, ""):
        try:
            topic = _topic(session, merchant, topic_id)
        except NotFound:
            errors["topic"] = _("Choose one of the topics.")
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    token = clean_token(token)
    existing = session.scalar(
        select(AskedQuestion).where(
            AskedQuestion.merchant_id == merchant.id, AskedQuestion.token == token
        )
    )
    if existing is not None:
        return existing
    now = now or utcnow()
    assignee_id = (topic.assignee_id if topic is not None else None) or owner_id(
        session, merchant.id
    )
    if assignee_id is not None and role_of(session, merchant.id, assignee_id) is None:
        assignee_id = owner_id(session, merchant.id)  # the topic's person left the shop
    question = AskedQuestion(
        merchant_id=merchant.id,
        topic_id=topic.id if topic else None,
        assignee_id=assignee_id,
        user_id=asker.user.id if asker.user else None,
        guest_email=guest_email,
        locale=locale if locale in current_app.config["LANGUAGES"] else "en",
        notify_email=bool(notify) or guest_email is not None,
        text=text,
        token=token,
        status="open",
        unread=False,
        created_at=now,
        last_message_at=now,
    )
    question.messages.append(
        ThreadMessage(author_id=question.user_id, from_staff=False, text=text, created_at=now)
    )
    try:
        with unit_of_work(session):
            session.add(question)
            session.flush()
            _announce(session, merchant, question, topic, guest_email, assignee_id, now, send_mail)
    except IntegrityError:  # the same form sent twice at once: the other request stored it
        existing = session.scalar(
            select(AskedQuestion).where(
                AskedQuestion.merchant_id == merchant.id, AskedQuestion.token == token
            )
        )
        if existing is None:
            raise
        return existing
    return question


def _announce(
    session: Session,
    merchant: Merchant,
    question: AskedQuestion,
    topic: QuestionTopic | None,
    guest_email: str | None,
    assignee_id: int | None,
    now: datetime,
    send_mail: bool,
) -> None:
    """Tell the assignee (unless ``send_mail`` is off) and record the webhook event of a new question."""
    if send_mail:
        _tell_assignee(session, merchant, question, topic)
    outbox.record_event(
        session,
        merchant,
        EVENT_ASKED,
        {
            "id": question.id,
            "topic": topic.name if topic else None,
            "guest": guest_email is not None,
            "assignee_id": assignee_id,
            "asked_at": now.isoformat(),
        },
    )


def staff_link(merchant: Merchant, question: AskedQuestion) -> str:
    return public_url("concierge.staff_thread", merchant_slug=merchant.slug, question_id=question.id)


def customer_link(merchant: Merchant, question: AskedQuestion) -> str:
    if question.user_id is None:
        return public_url("public.merchant", slug=merchant.slug)
    return public_url("concierge.thread", merchant_slug=merchant.slug, question_id=question.id)


def _tell_assignee(
    session: Session, merchant: Merchant, question: AskedQuestion, topic: QuestionTopic | None
) -> None:
    user = session.get(User, question.assignee_id) if question.assignee_id else None
    if user is None or not user.email:
        return
    with in_recipient_language(user, merchant.network):
        subject = _("New question for %(merchant)s", merchant=merchant.name)
        body = _(
            "A customer asked (topic: %(topic)s):\n\n%(text)s\n\nAnswer it here: %(link)s",
            topic=topic.name if topic else _("general"),
            text=question.text,
            link=staff_link(merchant, question),
        )
    send_email(user.email, subject, body)


def _tell_customer(
    session: Session, merchant: Merchant, question: AskedQuestion, answer: str
) -> None:
    if not question.notify_email:
        return
    user = session.get(User, question.user_id) if question.user_id else None
    address = user.email if user is not None else question.guest_email
    if not address or (user is not None and user.erased_at is not None):
        return
    # A guest has no account: their language is the one they asked in.
    reader = user if user is not None else _Guest(question.locale)
    with in_recipient_language(reader, merchant.network):
        subject = _("%(merchant)s answered your question", merchant=merchant.name)
        body = _(
            "You asked:\n%(question)s\n\n%(merchant)s answers:\n%(answer)s\n\n%(link)s",
            question=question.text,
            merchant=merchant.name,
            answer=answer,
            link=customer_link(merchant, question),
        )
    send_email(address, subject, body, sender_name=merchant.name)


@dataclass(frozen=True)
class _Guest:
    locale: str


def visible_questions(
    session: Session,
    merchant: Merchant,
    user_id: int,
    role: str,
    status: str = "open",
    limit: int = 100,
) -> list[AskedQuestion]:
    """Open (or answered, or closed) questions this staff member may see: the owner every one of the
    merchant's, a cashier those routed to them."""
    query = select(AskedQuestion).where(AskedQuestion.merchant_id == merchant.id)
    if status in ("open", "answered", "closed"):
        query = query.where(AskedQuestion.status == status)
    if role != "owner":
        query = query.where(AskedQuestion.assignee_id == user_id)
    query = query.options(selectinload(AskedQuestion.topic))  # the list shows each topic's name
    return list(session.scalars(query.order_by(AskedQuestion.last_message_at.desc()).limit(limit)))


def staff_question(
    session: Session, merchant: Merchant, user_id: int, role: str, question_id
) -> AskedQuestion:
    """The question if this staff member may see it; 404 otherwise (another shop, another topic)."""
    try:
        question_id = int(question_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    query = select(AskedQuestion).where(
        AskedQuestion.id == question_id, AskedQuestion.merchant_id == merchant.id
    )
    if role != "owner":
        query = query.where(AskedQuestion.assignee_id == user_id)
    question = session.scalar(query)
    if question is None:
        raise NotFound()
    return question


def reply(
    session: Session,
    merchant: Merchant,
    question: AskedQuestion,
    author: User,
    text: str,
    from_staff: bool = True,
    token: str | None = None,
    now: datetime | None = None,
) -> ThreadMessage:
    """Add a message to the thread. A staff answer sets the time of the first answer (once), marks
    the question answered and unread for the asker, and tells them (wallet, e-mail with consent)."""
    text = clean_text(text)
    token = clean_token(token)
    existing = session.scalar(
        select(ThreadMessage).where(
            ThreadMessage.question_id == question.id, ThreadMessage.token == token
        )
    )
    if existing is not None:
        return existing
    now = now or utcnow()
    message = ThreadMessage(
        question_id=question.id,
        author_id=author.id,
        from_staff=from_staff,
        text=text,
        token=token,
        created_at=now,
    )
    try:
        with unit_of_work(session):
            session.add(message)
            session.flush()
            _record_reply(session, merchant, question, text, from_staff, now)
    except IntegrityError:
        found = session.scalar(
            select(ThreadMessage).where(
                ThreadMessage.question_id == question.id, ThreadMessage.token == token
            )
        )
        if found is None:
            raise
        return found
    session.refresh(question)
    return message


def _record_reply(
    session: Session, merchant: Merchant, question: AskedQuestion, text: str, from_staff: bool,
    now: datetime,
) -> None:
    """The question's state after a new message, and who is told about it."""
    if from_staff:
        # Guarded: only the first answer sets the figure the owner watches.
        session.execute(
            update(AskedQuestion)
            .where(AskedQuestion.id == question.id, AskedQuestion.first_answer_at.is_(None))
            .values(first_answer_at=now)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(AskedQuestion)
            .where(AskedQuestion.id == question.id)
            .values(status="answered", unread=True, last_message_at=now)
            .execution_options(synchronize_session=False)
        )
        _tell_customer(session, merchant, question, text)
    else:
        session.execute(
            update(AskedQuestion)
            .where(AskedQuestion.id == question.id)
            .values(status="open", last_message_at=now)
            .execution_options(synchronize_session=False)
        )
        _tell_assignee(session, merchant, question, question.topic)


def close(session: Session, merchant: Merchant, question: AskedQuestion) -> None:
    with unit_of_work(session):
        session.execute(
            update(AskedQuestion)
            .where(AskedQuestion.id == question.id, AskedQuestion.merchant_id == merchant.id)
            .values(status="closed")
            .execution_options(synchronize_session=False)
        )


# --------------------------------------------------------------------------- the customer's side


def customer_questions(
    session: Session, user_id: int, merchant_id: int, limit: int = 20
) -> list[AskedQuestion]:
    return list(
        session.scalars(
            select(AskedQuestion)
            .where(AskedQuestion.user_id == user_id, AskedQuestion.merchant_id == merchant_id)
            .order_by(AskedQuestion.last_message_at.desc())
            .limit(limit)
        )
    )


def customer_question(
    session: Session, user_id: int, merchant_id: int, question_id
) -> AskedQuestion:
    try:
        question_id = int(question_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    question = session.scalar(
        select(AskedQuestion).where(
            AskedQuestion.id == question_id,
            AskedQuestion.merchant_id == merchant_id,
            AskedQuestion.user_id == user_id,
        )
    )
    if question is None:
        raise NotFound()
    return question


def mark_read(session: Session, question: AskedQuestion) -> None:
    if question.unread:
        with unit_of_work(session):
            session.execute(
                update(AskedQuestion)
                .where(AskedQuestion.id == question.id)
                .values(unread=False)
                .execution_options(synchronize_session=False)
            )
        session.refresh(question)


@lru_cache(maxsize=1)
def _unread_statement():
    """The wallet's unread answers per merchant, built once (every wallet visit runs it)."""
    return (
        select(AskedQuestion.merchant_id, func.count(AskedQuestion.id))
        .where(AskedQuestion.user_id == bindparam("user_id"), AskedQuestion.unread.is_(True))
        .group_by(AskedQuestion.merchant_id)
    )


def unread_by_merchant(session: Session, user_id: int) -> dict[int, int]:
    """Answers not seen yet per merchant, for every card of the wallet in one statement."""
    return dict(session.execute(_unread_statement(), {"user_id": user_id}).all())


# --------------------------------------------------------------------------- the owner's figures


@dataclass(frozen=True)
class Figures:
    open: int
    answered: int
    median_minutes: float | None
    average_minutes: float | None
    faq_answered: int
    faq_entries: int


@lru_cache(maxsize=4)
def _figures_statement(sample: int):
    """The panel's figures in one statement, built once per sample size (the panel sent three,
    each built anew): the latest ``sample`` answered questions' times (kind 0), then one row
    (kind 1) with the open and answered counts and the FAQ's entries and picks."""
    questions, faq = AskedQuestion.__table__.c, FaqEntry.__table__.c
    merchant_id = bindparam("merchant_id")
    latest = (
        select(questions.created_at, questions.first_answer_at)
        .where(questions.merchant_id == merchant_id, questions.first_answer_at.is_not(None))
        .order_by(questions.first_answer_at.desc())
        .limit(sample)
        .subquery()
    )

    def count(*where):
        return select(func.count()).where(questions.merchant_id == merchant_id, *where).scalar_subquery()

    no_count = literal(None, Integer)
    pairs = select(literal(0), latest.c.created_at, latest.c.first_answer_at, no_count, no_count, no_count, no_count)
    counts = select(
        literal(1),
        literal(None, questions.created_at.type),
        literal(None, questions.first_answer_at.type),
        count(questions.status == "open"),
        count(questions.status.in_(("answered", "closed"))),
        select(func.count()).where(faq.merchant_id == merchant_id).scalar_subquery(),
        select(func.coalesce(func.sum(faq.picks), 0)).where(faq.merchant_id == merchant_id).scalar_subquery(),
    )
    return union_all(pairs, counts)


def figures(session: Session, merchant: Merchant, sample: int = 1000) -> Figures:
    """Open questions, time to a first staff answer (median and average over the latest ``sample``
    answered questions) and how many questions the FAQ answered (picks)."""
    minutes = []
    totals = (0, 0, 0, 0)
    for kind, asked, answered, *counts in session.execute(_figures_statement(sample), {"merchant_id": merchant.id}):
        if kind:
            totals = counts
        else:
            minutes.append(max((answered - asked).total_seconds(), 0) / 60)
    open_questions, answered_questions, faq_entries, faq_picks = totals
    return Figures(
        open=int(open_questions or 0),
        answered=int(answered_questions or 0),
        median_minutes=statistics.median(minutes) if minutes else None,
        average_minutes=statistics.fmean(minutes) if minutes else None,
        faq_answered=int(faq_picks or 0),
        faq_entries=int(faq_entries or 0),
    )


def open_count(session: Session, merchant_id: int, user_id: int, role: str) -> int:
    query = select(func.count(AskedQuestion.id)).where(
        AskedQuestion.merchant_id == merchant_id, AskedQuestion.status == "open"
    )
    if role != "owner":
        query = query.where(AskedQuestion.assignee_id == user_id)
    return session.scalar(query) or 0


# --------------------------------------------------------------------------- privacy


def customer_export(session: Session, user_id: int) -> list[dict]:
    out = []
    for question in session.scalars(
        select(AskedQuestion).where(AskedQuestion.user_id == user_id).order_by(AskedQuestion.id)
    ):
        out.append(
            {
                "merchant_id": question.merchant_id,
                "asked_at": question.created_at.isoformat(),
                "status": question.status,
                "messages": [
                    {"from_staff": m.from_staff, "text": m.text, "at": m.created_at.isoformat()}
                    for m in question.messages
                ],
            }
        )
    return out


def forget_customer(session: Session, user_id: int) -> None:
    """An erased customer's questions lose their words and their link to the person."""
    ids = list(session.scalars(select(AskedQuestion.id).where(AskedQuestion.user_id == user_id)))
    if not ids:
        return
    session.execute(
        update(ThreadMessage)
        .where(ThreadMessage.question_id.in_(ids), ThreadMessage.from_staff.is_(False))
        .values(text="—", author_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(AskedQuestion)
        .where(AskedQuestion.id.in_(ids))
        .values(text="—", user_id=None, guest_email="erased@erased.invalid", notify_email=False)
        .execution_options(synchronize_session=False)
    )
