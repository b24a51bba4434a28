"""Surveys, answers and rewards, visit ratings and complaint threads (no request, no templates)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugins.surveys.models import (
    AUDIENCES,
    MAX_CHOICE,
    MAX_CHOICES,
    MAX_COMMENT,
    MAX_LONG,
    MAX_MESSAGE,
    MAX_OPTION_KEY,
    MAX_QUESTION,
    MAX_REWARD_LABEL,
    MAX_SHORT,
    MAX_STATUS,
    MAX_TITLE,
    QUESTION_KINDS,
    Answer,
    Complaint,
    ComplaintMessage,
    Invitation,
    Question,
    Rating,
    Response,
    Survey,
)
from webapp.contracts import RewardOption
from webapp.errors import Conflict, NotFound, RewardUnavailable, ValidationFailed
from webapp.extensions import upsert_insert
from webapp.formatting import points as format_points
from webapp.models import Membership, Merchant, Purchase, User
from webapp.models.base import utcnow
from webapp.plugins import hooks_for, sorted_by_order
from webapp.services import ledger
from webapp.services.ledger import Posting, week_start

PAGE_SIZE = 25
MAX_REWARD = 100_000
MAX_QUESTIONS = 80
LOW_SCORE = 2  # ratings at or below this open a complaint thread

KIND_LABELS = {
    "rating": _l("Rating 1-5"),
    "single": _l("Single choice"),
    "multiple": _l("Multiple choice"),
    "short": _l("Short text"),
    "long": _l("Long text"),
    "nps": _l("Recommend 0-10 (NPS)"),
}

# Starting points for a new survey: (kind, text, required, options).
TEMPLATES: dict[str, dict] = {
    "blank": {"title": _l("New survey"), "questions": []},
    "how_did_we_do": {
        "title": _l("How did we do?"),
        "questions": [
            ("rating", _l("How happy are you with your last visit?"), True, ""),
            ("nps", _l("How likely are you to recommend us to a friend?"), True, ""),
            ("long", _l("What could we do better?"), False, ""),
        ],
    },
    "sell_next": {
        "title": _l("What should we sell next?"),
        "questions": [
            ("short", _l("Which product would you like us to sell?"), True, ""),
            ("long", _l("Why would you buy it here?"), False, ""),
        ],
    },
    "competitors": {
        "title": _l("Where else do you shop for this, and why?"),
        "questions": [
            ("short", _l("Where else do you buy what you buy from us?"), True, ""),
            (
                "multiple", _l("Why do you shop there?"), False,
                "\n".join(str(x) for x in (_l("Lower prices"), _l("Closer to me"), _l("Wider choice"),
                                           _l("Longer opening hours"), _l("Better service"))),
            ),
            ("long", _l("What would make you buy it here instead?"), False, ""),
        ],
    },
}
TEMPLATE_LABELS = {
    "blank": _l("Blank survey"),
    "how_did_we_do": _l("How did we do?"),
    "sell_next": _l("What should we sell next? (proposals ranked by votes)"),
    "competitors": _l("Where else do you shop for this, and why?"),
}


def _upsert_nothing(session: Session, model, values: dict, index: list[str]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING: returns 1 when a row was written, 0 when it existed."""
    table = model.__table__
    statement = upsert_insert(session)(table).values(**values).on_conflict_do_nothing(index_elements=index)
    # RETURNING, not rowcount: psycopg reports -1 rows for INSERT ... ON CONFLICT.
    return 0 if session.execute(statement.returning(table.c.id)).first() is None else 1


# --------------------------------------------------------------------------- builder


def create_survey(session: Session, merchant: Merchant, template: str) -> Survey:
    """A draft survey with the template's questions (the owner adjusts them in the builder)."""
    spec = TEMPLATES.get(template)
    if spec is None:
        raise ValidationFailed(_("Choose a template to start from."), errors={"template": _("Choose a template to start from.")})
    survey = Survey(
        merchant_id=merchant.id, title=str(spec["title"]), template=template, intro="",
        token=secrets.token_urlsafe(16), status="draft", reward_points=0, audience="all",
        completed_count=0, public=False, audience_status="",
    )
    session.add(survey)
    session.flush()
    for position, (kind, question_text, required, options) in enumerate(spec["questions"], start=1):
        session.add(Question(survey_id=survey.id, position=position, kind=kind, text=str(question_text),
                             required=required, choices=options))
    session.commit()
    return survey


def get_survey(session: Session, merchant: Merchant, survey_id: int) -> Survey:
    """A survey of this merchant; another merchant's survey is as missing as a deleted one."""
    survey = session.scalar(select(Survey).where(Survey.id == survey_id, Survey.merchant_id == merchant.id))
    if survey is None:
        raise NotFound(_("No such survey."))
    return survey


def list_surveys(session: Session, merchant: Merchant) -> list[Survey]:
    return list(session.scalars(
        select(Survey).where(Survey.merchant_id == merchant.id).order_by(Survey.id.desc())
    ))


def _int(raw: str | None, field_name: str, errors: dict, low: int, high: int, message: str) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        errors[field_name] = message
        return None
    if not low <= value <= high:
        errors[field_name] = message
        return None
    return value


def _date(raw: str | None, field_name: str, errors: dict) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[field_name] = _("Enter a date like 2026-12-31.")
        return None


def update_settings(session: Session, merchant: Merchant, survey_id: int, form: Mapping[str, str]) -> Survey:
    """Title, intro, reward, audience, dates, quota, public link; every field checked at once."""
    survey = get_survey(session, merchant, survey_id)
    errors: dict[str, str] = {}
    title = " ".join((form.get("title") or "").split())
    if not title:
        errors["title"] = _("Give the survey a title.")
    elif len(title) > MAX_TITLE:
        errors["title"] = _("The title can have at most %(count)s characters.", count=MAX_TITLE)
    intro = (form.get("intro") or "").strip()
    if len(intro) > MAX_LONG:
        errors["intro"] = _("At most %(count)s characters.", count=MAX_LONG)
    reward = _int(form.get("reward_points"), "reward_points", errors, 0, MAX_REWARD,
                  _("Enter whole points from 0 to %(max)s.", max=MAX_REWARD)) or 0
    option_key = (form.get("reward_option") or "").strip()
    option_label = survey.reward_label if option_key == survey.reward_option else ""
    if option_key and option_key != survey.reward_option:
        option = {o.key: o for o in reward_options(session, merchant)}.get(option_key)
        if option is None:
            errors["reward_option"] = _("Choose one of the rewards offered.")
        elif not option.available:
            errors["reward_option"] = option.note or _("This reward cannot be given right now.")
        else:
            option_label = option.label[:MAX_REWARD_LABEL]
    audience = form.get("audience") or "all"
    if audience not in AUDIENCES:
        errors["audience"] = _("Choose who may answer.")
    days = _int(form.get("audience_days"), "audience_days", errors, 1, 3650,
                _("Enter a number of days from 1 to 3650."))
    if audience == "recent" and days is None and "audience_days" not in errors:
        errors["audience_days"] = _("Say how many days back a purchase counts.")
    status_level = " ".join((form.get("audience_status") or "").split())
    if audience == "status" and not status_level:
        errors["audience_status"] = _("Name the status level that may answer.")
    elif len(status_level) > MAX_STATUS:
        errors["audience_status"] = _("At most %(count)s characters.", count=MAX_STATUS)
    starts_on = _date(form.get("starts_on"), "starts_on", errors)
    ends_on = _date(form.get("ends_on"), "ends_on", errors)
    if starts_on and ends_on and ends_on < starts_on:
        errors["ends_on"] = _("The survey cannot end before it starts.")
    quota = _int(form.get("quota"), "quota", errors, 1, 1_000_000,
                 _("Enter a whole number of answers from 1, or leave it empty for no limit."))
    if quota is not None and quota < survey.completed_count and "quota" not in errors:
        errors["quota"] = _("%(count)s people have already answered; the quota cannot be lower.",
                            count=survey.completed_count)
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    survey.title, survey.intro, survey.reward_points = title, intro, reward
    survey.reward_option, survey.reward_label = option_key, option_label
    survey.audience, survey.audience_days = audience, days if audience == "recent" else None
    survey.audience_status = status_level if audience == "status" else ""
    survey.starts_on, survey.ends_on, survey.quota = starts_on, ends_on, quota
    survey.public = form.get("public") in ("1", "on", "true")
    session.commit()
    return survey


def clean_question(form: Mapping[str, str]) -> dict:
    errors: dict[str, str] = {}
    kind = form.get("kind") or ""
    if kind not in QUESTION_KINDS:
        errors["kind"] = _("Choose a question type.")
    question_text = " ".join((form.get("text") or "").split())
    if not question_text:
        errors["text"] = _("Write the question.")
    elif len(question_text) > MAX_QUESTION:
        errors["text"] = _("A question can have at most %(count)s characters.", count=MAX_QUESTION)
    options = [" ".join(line.split()) for line in (form.get("choices") or "").splitlines()]
    options = [option for option in options if option]
    if kind in ("single", "multiple"):
        if len(options) < 2:
            errors["choices"] = _("Give at least two options, one per line.")
        elif len(options) > MAX_CHOICES:
            errors["choices"] = _("At most %(count)s options.", count=MAX_CHOICES)
        elif any(len(option) > MAX_CHOICE for option in options):
            errors["choices"] = _("An option can have at most %(count)s characters.", count=MAX_CHOICE)
        elif len(set(options)) != len(options):
            errors["choices"] = _("Each option must be different.")
    else:
        options = []
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    return {"kind": kind, "text": question_text, "required": form.get("required") in ("1", "on"),
            "choices": "\n".join(options)}


def get_question(session: Session, merchant: Merchant, question_id: int) -> Question:
    question = session.scalar(
        select(Question).join(Survey).where(Question.id == question_id, Survey.merchant_id == merchant.id)
    )
    if question is None:
        raise NotFound(_("No such question."))
    return question


def add_question(session: Session, merchant: Merchant, survey_id: int, form: Mapping[str, str]) -> Question:
    survey = get_survey(session, merchant, survey_id)
    data = clean_question(form)
    if len(survey.questions) >= MAX_QUESTIONS:
        raise ValidationFailed(_("A survey can have at most %(count)s questions.", count=MAX_QUESTIONS))
    position = max((q.position for q in survey.questions), default=0) + 1
    question = Question(survey_id=survey.id, position=position, **data)
    session.add(question)
    session.commit()
    return question


def update_question(session: Session, merchant: Merchant, question_id: int, form: Mapping[str, str]) -> Question:
    question = get_question(session, merchant, question_id)
    data = clean_question(form)
    for key, value in data.items():
        setattr(question, key, value)
    session.commit()
    return question


def delete_question(session: Session, merchant: Merchant, question_id: int) -> Survey:
    """Removes the question and the answers given to it."""
    question = get_question(session, merchant, question_id)
    survey = question.survey
    session.execute(delete(Answer).where(Answer.question_id == question.id))
    session.delete(question)
    session.commit()
    session.refresh(survey)
    return survey


def move_question(session: Session, merchant: Merchant, question_id: int, direction: str) -> Survey:
    """Swap with the neighbour above ("up") or below ("down")."""
    question = get_question(session, merchant, question_id)
    survey = question.survey
    ordered = list(survey.questions)
    index = ordered.index(question)
    other = index - 1 if direction == "up" else index + 1
    if direction in ("up", "down") and 0 <= other < len(ordered):
        ordered[index], ordered[other] = ordered[other], ordered[index]
        for position, item in enumerate(ordered, start=1):
            item.position = position
        session.commit()
        session.refresh(survey)
    return survey


def set_status(session: Session, merchant: Merchant, survey_id: int, status: str) -> Survey:
    survey = get_survey(session, merchant, survey_id)
    if status not in ("open", "closed"):
        raise ValidationFailed(_("Unknown action."))
    if status == "open" and not survey.questions:
        raise ValidationFailed(_("Add at least one question before opening the survey."))
    survey.status = status
    session.commit()
    return survey


# --------------------------------------------------------------------------- answering


def closed_reason(survey: Survey, today: date | None = None) -> str | None:
    """Why the survey takes no answers now, or None when it does."""
    today = today or utcnow().date()
    if survey.status != "open":
        return _("This survey is closed.")
    if survey.starts_on and today < survey.starts_on:
        return _("This survey opens on %(date)s.", date=survey.starts_on.isoformat())
    if survey.ends_on and today > survey.ends_on:
        return _("This survey is closed.")
    if survey.quota is not None and survey.completed_count >= survey.quota:
        return _("This survey has all the answers it needs. Thank you!")
    return None


def reward_options(session: Session, merchant: Merchant) -> list[RewardOption]:
    """Rewards besides points other enabled plugins let this merchant give (a partner's certificate)."""
    found = hooks_for(merchant).neighbourly_collect_reward_options(merchant=merchant, session=session)
    return [option for options in found if options for option in options]


def reward_problem(session: Session, merchant: Merchant, survey: Survey) -> str | None:
    """Why the survey's non-point reward cannot be given now, or None when it can (or has none)."""
    if not survey.reward_option:
        return None
    option = {o.key: o for o in reward_options(session, merchant)}.get(survey.reward_option)
    if option is None:
        return _("“%(reward)s” is not offered any more.", reward=survey.reward_label)
    if not option.available:
        return option.note or _("“%(reward)s” cannot be given right now.", reward=survey.reward_label)
    return None


def reward_words(points: int, label: str) -> str:
    """The reward in words for messages ("100 points + Certificate for 2,000 ₸ at Café Abay")."""
    if points and label:
        return _("%(points)s points + %(reward)s", points=format_points(points), reward=label)
    if points:
        return _("%(points)s points", points=format_points(points))
    return label


def survey_by_token(session: Session, token: str) -> Survey:
    survey = session.scalar(select(Survey).where(Survey.token == (token or "")[:40]))
    if survey is None or survey.status == "draft":
        raise NotFound(_("No such survey."))
    return survey


def active_membership(session: Session, user_id: int, merchant_id: int) -> Membership | None:
    return session.scalar(select(Membership).where(
        Membership.user_id == user_id, Membership.merchant_id == merchant_id, Membership.left_at.is_(None)
    ))


def member_status(membership: Membership) -> str:
    """The member's status level as another plugin states it (the "status" customer fact), or ""."""
    merchant = membership.merchant
    results = hooks_for(merchant).neighbourly_collect_customer_facts(
        merchant=merchant, membership=membership, purchase=None
    )
    for fact in sorted_by_order(results):
        if getattr(fact, "key", None) == "status":
            return str(fact.value)
    return ""


def in_audience(survey: Survey, membership: Membership | None) -> bool:
    if membership is None or survey.public:
        return survey.public
    if survey.audience == "recent" and survey.audience_days:
        since = utcnow() - timedelta(days=survey.audience_days)
        last = membership.last_purchase_at
        return last is not None and last >= since
    if survey.audience == "status":
        return member_status(membership).casefold() == survey.audience_status.casefold()
    return True


def check_respondent(session: Session, survey: Survey, user: User) -> Membership | None:
    """The respondent's membership (None for a non-member of a public survey); 404 if not invited."""
    membership = active_membership(session, user.id, survey.merchant_id)
    if not in_audience(survey, membership):
        raise NotFound(_("No such survey."))
    return membership


def find_response(session: Session, survey: Survey, user: User) -> Response | None:
    return session.scalar(select(Response).where(Response.survey_id == survey.id, Response.user_id == user.id))


def saved_answers(session: Session, response: Response | None) -> dict[int, Answer]:
    if response is None:
        return {}
    return {a.question_id: a for a in session.scalars(select(Answer).where(Answer.response_id == response.id))}


def clean_answers(
    survey: Survey, form: Mapping[str, Sequence[str]], complete: bool
) -> dict[int, tuple[int | None, str]]:
    """Check the submitted answers against the survey's questions; errors are per question id.

    ``form`` maps field names to lists of values (``request.form.to_dict(flat=False)``). A field
    naming a question of another survey is refused, never silently dropped.
    """
    questions = {q.id: q for q in survey.questions}
    errors: dict[str, str] = {}
    cleaned: dict[int, tuple[int | None, str]] = {}
    for key in form:
        if key.startswith("q") and key[1:].isdigit() and int(key[1:]) not in questions:
            errors[key] = _("This answer does not belong to this survey.")
    for question in survey.questions:
        key = f"q{question.id}"
        values = [v.strip() for v in form.get(key, []) if v is not None and v.strip()]
        if not values:
            if complete and question.required:
                errors[key] = _("Please answer this question.")
            continue
        kind = question.kind
        if kind in ("rating", "nps"):
            low, high = (1, 5) if kind == "rating" else (0, 10)
            try:
                number = int(values[0])
            except ValueError:
                number = None
            if number is None or not low <= number <= high or len(values) > 1:
                errors[key] = _("Choose a number from %(low)s to %(high)s.", low=low, high=high)
                continue
            cleaned[question.id] = (number, "")
        elif kind == "single":
            if len(values) > 1 or values[0] not in question.options:
                errors[key] = _("Choose one of the offered answers.")
                continue
            cleaned[question.id] = (question.options.index(values[0]), values[0])
        elif kind == "multiple":
            if any(v not in question.options for v in values) or len(set(values)) != len(values):
                errors[key] = _("Choose among the offered answers.")
                continue
            chosen = [o for o in question.options if o in values]
            cleaned[question.id] = (None, "\n".join(chosen))
        else:
            limit = MAX_SHORT if kind == "short" else MAX_LONG
            answer = values[0].replace("\r\n", "\n").replace("\r", "\n")
            if kind == "short":
                answer = " ".join(answer.split())
            if len(values) > 1:
                errors[key] = _("Give one answer.")
            elif len(answer) > limit:
                errors[key] = _("At most %(count)s characters; this has %(length)s.", count=limit, length=len(answer))
            else:
                cleaned[question.id] = (None, answer)
    if errors:
        raise ValidationFailed(
            _("Some answers need your attention: %(count)s.", count=len(errors)), errors=errors
        )
    return cleaned


def _start(session: Session, survey: Survey, user: User) -> int:
    """The respondent's response id; two first saves at once write one row."""
    _upsert_nothing(session, Response, {
        "survey_id": survey.id, "user_id": user.id, "status": "started", "started_at": utcnow(),
        "reward_points": 0,
    }, ["survey_id", "user_id"])
    return session.scalar(select(Response.id).where(Response.survey_id == survey.id, Response.user_id == user.id))


def _write_answers(session: Session, response_id: int, answers: dict[int, tuple[int | None, str]]) -> None:
    session.execute(delete(Answer).where(Answer.response_id == response_id))
    if answers:
        session.execute(insert(Answer), [
            {"response_id": response_id, "question_id": qid, "number": number, "text": answer}
            for qid, (number, answer) in answers.items()
        ])


def save_progress(session: Session, survey: Survey, user: User, form: Mapping[str, Sequence[str]]) -> Response:
    """Keep what was answered so far (each answer still checked) to finish later."""
    check_respondent(session, survey, user)
    reason = closed_reason(survey)
    if reason:
        raise Conflict(reason)
    answers = clean_answers(survey, form, complete=False)
    try:
        response_id = _start(session, survey, user)
        # Touching the row locks it, so a completion running now cannot interleave with us.
        still_open = session.execute(
            update(Response).where(Response.id == response_id, Response.status == "started")
            .values(started_at=Response.started_at).execution_options(synchronize_session=False)
        ).rowcount
        if not still_open:
            raise Conflict(_("You have already completed this survey. Thank you!"))
        _write_answers(session, response_id, answers)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return session.get(Response, response_id)


def submit(session: Session, survey: Survey, user: User, form: Mapping[str, Sequence[str]]) -> Response:
    """Complete a response and pay its reward, all in one transaction.

    Exactly once per person and survey: the response row is claimed with a conditional UPDATE
    (``status = 'started'``) under a UNIQUE (survey, person); the quota counter grows only through
    ``completed_count < quota`` in its own UPDATE. A non-member's reward waits until they join.
    """
    membership = check_respondent(session, survey, user)
    reason = closed_reason(survey)
    if reason:
        raise Conflict(reason)
    answers = clean_answers(survey, form, complete=True)
    now = utcnow()
    try:
        response_id = _start(session, survey, user)
        claimed = session.execute(
            update(Response).where(Response.id == response_id, Response.status == "started")
            .values(status="completed", completed_at=now, reward_points=survey.reward_points,
                    reward_option=survey.reward_option, reward_label=survey.reward_label)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            raise Conflict(_("You have already completed this survey. Thank you!"))
        counted = session.execute(
            text("UPDATE surveys_surveys SET completed_count = completed_count + 1 "
                 "WHERE id = :id AND (quota IS NULL OR completed_count < quota)"),
            {"id": survey.id},
        ).rowcount
        if not counted:
            raise Conflict(_("This survey has all the answers it needs. Thank you!"))
        _write_answers(session, response_id, answers)
        if membership is not None:
            _pay_reward(session, survey, membership, user, response_id, now, strict=True)
        session.commit()
    except RewardUnavailable as refusal:
        # The promised certificate has run out: nothing is completed or paid, the answers stay.
        session.rollback()
        save_progress(session, survey, user, form)
        raise RewardUnavailable(_(
            "%(reason)s The survey cannot be completed with its reward now; your answers are saved.",
            reason=refusal.message,
        )) from refusal
    except Exception:
        session.rollback()
        raise
    session.expire(survey)
    return session.get(Response, response_id)


_UNPAID = (Response.reward_paid_at.is_(None), Response.reward_missed_at.is_(None),
           or_(Response.reward_points > 0, Response.reward_option != ""))


def _pay_reward(
    session: Session, survey: Survey, membership: Membership, user: User, response_id: int, now: datetime,
    *, strict: bool,
) -> bool:
    """Pay a completed response's reward once: the points, then any other plugin's reward.

    The conditional UPDATE on ``reward_paid_at`` makes the payment happen once however many
    requests race. When the other plugin cannot give its reward any more, ``strict`` re-raises
    (the caller rolls everything back); otherwise the points stay paid and the miss is recorded.
    """
    row = session.execute(
        update(Response).where(Response.id == response_id, *_UNPAID)
        .values(reward_paid_at=now).returning(Response.reward_points, Response.reward_option)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    points, option = row
    reason = _("Survey: %(title)s", title=survey.title)
    if points > 0:
        ledger.post(session, [Posting(
            membership.id, survey.merchant_id, "reward", points, reason, source="surveys",
            object_ref=f"surveys:response:{response_id}",
        )], now)
    if option:
        merchant = membership.merchant
        try:
            with session.begin_nested():
                granted = hooks_for(merchant).neighbourly_reward_recorded(
                    merchant=merchant, user=user, key=option, reason=reason, session=session,
                )
                if granted is None:  # the plugin giving it is switched off
                    raise RewardUnavailable(_("“%(reward)s” is not offered any more.",
                                              reward=survey.reward_label))
        except RewardUnavailable:
            if strict:
                raise
            session.execute(update(Response).where(Response.id == response_id)
                            .values(reward_missed_at=now).execution_options(synchronize_session=False))
        else:
            session.execute(update(Response).where(Response.id == response_id)
                            .values(reward_ref=granted.object_ref[:MAX_OPTION_KEY])
                            .execution_options(synchronize_session=False))
    return True


def pay_waiting_rewards(session: Session, merchant: Merchant, membership: Membership) -> int:
    """Inside the (re-)joining transaction: pay rewards earned before joining.

    A reward another plugin can no longer give is recorded as missed; the joining goes on.
    """
    rows = session.execute(
        select(Response.id, Survey).join(Survey, Survey.id == Response.survey_id).where(
            Survey.merchant_id == merchant.id, Response.user_id == membership.user_id,
            Response.status == "completed", *_UNPAID,
        )
    ).all()
    if not rows:
        return 0
    user = session.get(User, membership.user_id)
    paid = 0
    for response_id, survey in rows:
        paid += _pay_reward(session, survey, membership, user, response_id, utcnow(), strict=False)
    return paid


def my_responses(session: Session, user: User) -> list[Response]:
    return list(session.scalars(
        select(Response).where(Response.user_id == user.id, Response.status == "completed")
        .order_by(Response.completed_at.desc())
    ))


def delete_my_answers(session: Session, user: User, response_id: int) -> None:
    """The respondent's answers go; the row stays so the survey cannot be answered (and paid) again."""
    response = session.scalar(select(Response).where(Response.id == response_id, Response.user_id == user.id))
    if response is None:
        raise NotFound(_("No such answers."))
    session.execute(delete(Answer).where(Answer.response_id == response.id))
    response.answers_deleted_at = response.answers_deleted_at or utcnow()
    session.commit()


def open_surveys_for(session: Session, merchant: Merchant, membership: Membership) -> list[Survey]:
    """Surveys this member may answer now and has not completed."""
    done = select(Response.survey_id).where(Response.user_id == membership.user_id, Response.status == "completed")
    surveys = session.scalars(select(Survey).where(
        Survey.merchant_id == merchant.id, Survey.status == "open", Survey.id.not_in(done)
    ).order_by(Survey.id))
    return [s for s in surveys if closed_reason(s) is None and in_audience(s, membership)]


# --------------------------------------------------------------------------- invitations


def invite_after_purchase(session: Session, merchant: Merchant, purchase: Purchase) -> list[Survey]:
    """After commit: invite the buyer to every open survey they qualify for, once each.

    Returns the surveys newly invited to (the caller decides about e-mail).
    """
    membership = session.get(Membership, purchase.membership_id)
    if membership is None or membership.left_at is not None:
        return []
    invited = []
    for survey in open_surveys_for(session, merchant, membership):
        written = _upsert_nothing(session, Invitation, {
            "survey_id": survey.id, "user_id": membership.user_id, "purchase_id": purchase.id,
            "emailed": False, "created_at": utcnow(),
        }, ["survey_id", "user_id"])
        if written:
            invited.append(survey)
    return invited


def mark_emailed(session: Session, survey: Survey, user_id: int) -> None:
    session.execute(update(Invitation).where(Invitation.survey_id == survey.id, Invitation.user_id == user_id)
                    .values(emailed=True))


# --------------------------------------------------------------------------- results


@dataclass
class QuestionResult:
    question: Question
    count: int = 0
    labels: list[str] = field(default_factory=list)
    values: list[int] = field(default_factory=list)
    average: float | None = None
    nps: int | None = None
    proposals: list[tuple[str, int]] = field(default_factory=list)


def _answers_of(session: Session, survey: Survey):
    return session.execute(
        select(Answer).join(Response, Response.id == Answer.response_id)
        .where(Response.survey_id == survey.id, Response.status == "completed")
    ).scalars().all()


def results(session: Session, survey: Survey) -> list[QuestionResult]:
    by_question: dict[int, list[Answer]] = {}
    for answer in _answers_of(session, survey):
        by_question.setdefault(answer.question_id, []).append(answer)
    out = []
    for question in survey.questions:
        answers = by_question.get(question.id, [])
        result = QuestionResult(question, count=len(answers))
        if question.kind in ("rating", "nps"):
            low, high = (1, 5) if question.kind == "rating" else (0, 10)
            counts = Counter(a.number for a in answers)
            result.labels = [str(n) for n in range(low, high + 1)]
            result.values = [counts.get(n, 0) for n in range(low, high + 1)]
            if answers:
                result.average = round(sum(a.number for a in answers) / len(answers), 2)
            if question.kind == "nps" and answers:
                promoters = sum(1 for a in answers if a.number >= 9)
                detractors = sum(1 for a in answers if a.number <= 6)
                result.nps = round(100 * (promoters - detractors) / len(answers))
        elif question.kind in ("single", "multiple"):
            counts = Counter(line for a in answers for line in a.text.split("\n") if line)
            result.labels = question.options
            result.values = [counts.get(o, 0) for o in question.options]
        else:
            # Proposals: the same idea written by several customers counts as several votes.
            votes: Counter[str] = Counter()
            shown: dict[str, str] = {}
            for a in answers:
                key = " ".join(a.text.casefold().split())
                if key:
                    votes[key] += 1
                    shown.setdefault(key, a.text)
            result.proposals = [(shown[key], n) for key, n in votes.most_common(10)]
        out.append(result)
    return out


@dataclass(frozen=True)
class RewardsGiven:
    """What a survey has paid out so far; ``waiting`` rewards belong to people not yet members."""

    points: int
    certificates: int
    waiting: int
    missed: int


def rewards_given(session: Session, survey: Survey) -> RewardsGiven:
    paid = Response.reward_paid_at.is_not(None)
    points, certificates, waiting, missed = session.execute(
        select(
            func.coalesce(func.sum(case((paid, Response.reward_points), else_=0)), 0),
            func.count(case((Response.reward_ref != "", 1))),
            func.count(case((Response.reward_paid_at.is_(None) & Response.reward_missed_at.is_(None)
                             & ((Response.reward_points > 0) | (Response.reward_option != "")), 1))),
            func.count(Response.reward_missed_at),
        ).where(Response.survey_id == survey.id, Response.status == "completed")
    ).one()
    return RewardsGiven(int(points), certificates, waiting, missed)


def invited_count(session: Session, survey: Survey) -> int:
    return session.scalar(select(func.count()).select_from(Invitation).where(Invitation.survey_id == survey.id)) or 0


@dataclass
class TextPage:
    rows: list[tuple[Question, Answer]]
    page: int
    pages: int


def text_answers(session: Session, survey: Survey, search: str = "", page: int = 1) -> TextPage:
    """Free-text answers, newest first, filtered by a case-insensitive search."""
    query = (
        select(Question, Answer).join(Answer, Answer.question_id == Question.id)
        .join(Response, Response.id == Answer.response_id)
        .where(Question.survey_id == survey.id, Question.kind.in_(("short", "long")), Answer.text != "")
    )
    search = " ".join((search or "").split())[:100]
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(Answer.text).like(f"%{escaped}%", escape="\\"))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = session.execute(query.order_by(Answer.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return TextPage([(q, a) for q, a in rows], page, pages)


def export_rows(session: Session, survey: Survey) -> list[list[object]]:
    """The completed responses as rows; ``webapp.csvfiles`` neutralises formula-like cells."""
    questions = list(survey.questions)
    header = ["response", "completed_at"] + [q.text for q in questions]
    answers: dict[int, dict[int, Answer]] = {}
    for answer in _answers_of(session, survey):
        answers.setdefault(answer.response_id, {})[answer.question_id] = answer
    responses = session.scalars(select(Response).where(
        Response.survey_id == survey.id, Response.status == "completed").order_by(Response.id))
    rows: list[list[object]] = [list(header)]
    for response in responses:
        given = answers.get(response.id, {})
        row = [str(response.id), response.completed_at.isoformat() if response.completed_at else ""]
        for q in questions:
            a = given.get(q.id)
            row.append("" if a is None else (a.number if q.kind in ("rating", "nps") else a.text.replace("\n", "; ")))
        rows.append(row)
    return rows


def customer_answers(session: Session, merchant: Merchant, user_id: int) -> list[tuple[Survey, list[tuple[Question, Answer]]]]:
    """A customer's answers to this merchant's surveys (for the portrait)."""
    out = []
    responses = session.scalars(select(Response).join(Survey).where(
        Survey.merchant_id == merchant.id, Response.user_id == user_id, Response.status == "completed"
    ).order_by(Response.id.desc()).limit(10))
    for response in responses:
        questions = {q.id: q for q in response.survey.questions}
        pairs = [(questions[a.question_id], a) for a in saved_answers(session, response).values()
                 if a.question_id in questions]
        pairs.sort(key=lambda pair: pair[0].position)
        out.append((response.survey, pairs))
    return out


# --------------------------------------------------------------------------- ratings and complaints


def staff_purchase(session: Session, user: User, purchase_id: int) -> Purchase | None:
    """A purchase at a business where ``user`` works, when it is not their own purchase."""
    from webapp.models import StaffRole

    return session.scalar(
        select(Purchase)
        .join(Membership, Membership.id == Purchase.membership_id)
        .join(StaffRole, and_(StaffRole.merchant_id == Purchase.merchant_id, StaffRole.user_id == user.id))
        .where(Purchase.id == purchase_id, Membership.user_id != user.id)
    )


def rateable_purchase(session: Session, user: User, purchase_id: int) -> Purchase:
    """The user's own purchase; anyone else's is missing."""
    purchase = session.scalar(select(Purchase).join(Membership, Membership.id == Purchase.membership_id)
                              .where(Purchase.id == purchase_id, Membership.user_id == user.id))
    if purchase is None:
        raise NotFound(_("No such visit."))
    return purchase


def rating_for(session: Session, purchase_id: int) -> Rating | None:
    return session.scalar(select(Rating).where(Rating.purchase_id == purchase_id))


def rate_visit(session: Session, user: User, purchase_id: int, score: str | None, comment: str | None) -> Rating:
    """Store a rating (once per purchase); 1-2 also opens a complaint thread."""
    purchase = rateable_purchase(session, user, purchase_id)
    errors = {}
    try:
        value = int((score or "").strip())
    except ValueError:
        value = 0
    if not 1 <= value <= 5:
        errors["score"] = _("Choose from 1 to 5 stars.")
    comment = (comment or "").replace("\r\n", "\n").strip()
    if len(comment) > MAX_COMMENT:
        errors["comment"] = _("At most %(count)s characters; this has %(length)s.", count=MAX_COMMENT, length=len(comment))
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    if rating_for(session, purchase.id) is not None:
        raise Conflict(_("You have already rated this visit. Thank you!"))
    rating = Rating(merchant_id=purchase.merchant_id, purchase_id=purchase.id, membership_id=purchase.membership_id,
                    cashier_id=purchase.cashier_id, score=value, comment=comment)
    session.add(rating)
    try:
        session.flush()
        if value <= LOW_SCORE:
            complaint = Complaint(merchant_id=purchase.merchant_id, rating_id=rating.id,
                                  membership_id=purchase.membership_id, status="open")
            session.add(complaint)
            session.flush()
            if comment:
                session.add(ComplaintMessage(complaint_id=complaint.id, from_merchant=False,
                                             author_id=user.id, body=comment))
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(_("You have already rated this visit. Thank you!")) from None
    return rating


def complaint_for_rating(session: Session, rating_id: int) -> Complaint | None:
    return session.scalar(select(Complaint).where(Complaint.rating_id == rating_id))


def panel_counts(session: Session, merchant: Merchant) -> tuple[int, int]:
    """(open complaints, surveys running) for the dashboard panel, in one statement."""
    complaints = (
        select(func.count()).select_from(Complaint)
        .where(Complaint.merchant_id == merchant.id, Complaint.status == "open").scalar_subquery()
    )
    running = (
        select(func.count()).select_from(Survey)
        .where(Survey.merchant_id == merchant.id, Survey.status == "open").scalar_subquery()
    )
    complaints_count, running_count = session.execute(select(complaints, running)).one()
    return int(complaints_count or 0), int(running_count or 0)


def open_complaints_count(session: Session, merchant: Merchant) -> int:
    return session.scalar(select(func.count()).select_from(Complaint).where(
        Complaint.merchant_id == merchant.id, Complaint.status == "open")) or 0


def list_complaints(session: Session, merchant: Merchant) -> list[Complaint]:
    return list(session.scalars(select(Complaint).where(Complaint.merchant_id == merchant.id)
                                .order_by(Complaint.status, Complaint.id.desc()).limit(200)))


def get_complaint(session: Session, merchant: Merchant, complaint_id: int) -> Complaint:
    complaint = session.scalar(select(Complaint).where(Complaint.id == complaint_id,
                                                       Complaint.merchant_id == merchant.id))
    if complaint is None:
        raise NotFound(_("No such complaint."))
    return complaint


def customer_complaint(session: Session, user: User, complaint_id: int) -> Complaint:
    complaint = session.scalar(select(Complaint).join(Membership, Membership.id == Complaint.membership_id)
                               .where(Complaint.id == complaint_id, Membership.user_id == user.id))
    if complaint is None:
        raise NotFound(_("No such complaint."))
    return complaint


def customer_complaints(session: Session, membership: Membership) -> list[Complaint]:
    return list(session.scalars(select(Complaint).where(Complaint.membership_id == membership.id)
                                .order_by(Complaint.id.desc()).limit(5)))


def _clean_message(body: str | None) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise ValidationFailed(_("Write a message."), errors={"body": _("Write a message.")})
    if len(body) > MAX_MESSAGE:
        message = _("At most %(count)s characters; this has %(length)s.", count=MAX_MESSAGE, length=len(body))
        raise ValidationFailed(message, errors={"body": message})
    return body


def answer_complaint(session: Session, merchant: Merchant, staff: User, complaint_id: int, body: str | None) -> Complaint:
    complaint = get_complaint(session, merchant, complaint_id)
    body = _clean_message(body)
    now = utcnow()
    session.add(ComplaintMessage(complaint_id=complaint.id, from_merchant=True, author_id=staff.id, body=body,
                                 created_at=now))
    # Only the first answer sets the clock; a racing second answer leaves it alone.
    session.execute(update(Complaint).where(Complaint.id == complaint.id, Complaint.first_answer_at.is_(None))
                    .values(first_answer_at=now).execution_options(synchronize_session=False))
    session.commit()
    session.refresh(complaint)
    return complaint


def customer_reply(session: Session, user: User, complaint_id: int, body: str | None) -> Complaint:
    complaint = customer_complaint(session, user, complaint_id)
    session.add(ComplaintMessage(complaint_id=complaint.id, from_merchant=False, author_id=user.id,
                                 body=_clean_message(body)))
    session.commit()
    return complaint


def resolve_complaint(session: Session, merchant: Merchant, complaint_id: int) -> Complaint:
    complaint = get_complaint(session, merchant, complaint_id)
    if complaint.status != "resolved":
        complaint.status, complaint.resolved_at = "resolved", utcnow()
        session.commit()
    return complaint


def send_apology_bonus(session: Session, merchant: Merchant, complaint_id: int, raw_points: str | None) -> bool:
    """Pay an apology bonus once per complaint; returns False when one was already paid."""
    complaint = get_complaint(session, merchant, complaint_id)
    try:
        points = int((raw_points or "").strip())
    except ValueError:
        points = 0
    if not 1 <= points <= MAX_REWARD:
        message = _("Enter whole points from 1 to %(max)s.", max=MAX_REWARD)
        raise ValidationFailed(message, errors={"points": message})
    now = utcnow()
    try:
        paid = session.execute(
            update(Complaint).where(Complaint.id == complaint.id, Complaint.bonus_paid_at.is_(None))
            .values(bonus_paid_at=now, bonus_points=points).execution_options(synchronize_session=False)
        ).rowcount
        if paid:
            ledger.post(session, [Posting(
                complaint.membership_id, merchant.id, "reward", points, _("Apology bonus"),
                source="surveys", object_ref=f"surveys:complaint:{complaint.id}",
            )], now)
        session.commit()
    except Exception:
        session.rollback()
        raise
    session.refresh(complaint)
    return bool(paid)


def time_to_first_answer(complaint: Complaint) -> timedelta | None:
    if complaint.first_answer_at is None:
        return None
    return complaint.first_answer_at - complaint.created_at


def format_duration(delta: timedelta | None) -> str:
    if delta is None:
        return ""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return _("under a minute")
    if minutes < 60:
        return _("%(count)s min", count=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes)
    return _("%(count)s days", count=hours // 24)


@dataclass
class RatingReport:
    by_cashier: list[tuple[str, int, float]]
    by_week: list[tuple[date, int, float]]
    average_answer: str


def rating_report(session: Session, merchant: Merchant, weeks: int = 12) -> RatingReport:
    """Average rating per cashier and per week (last ``weeks`` weeks), and the average answer time."""
    rows = session.execute(
        select(Rating.cashier_id, func.count(), func.avg(Rating.score))
        .where(Rating.merchant_id == merchant.id).group_by(Rating.cashier_id)
    ).all()
    names = {u.id: u.name for u in session.scalars(select(User).where(User.id.in_([r[0] for r in rows if r[0]])))}
    by_cashier = sorted(
        ((names.get(cid, _("Unknown")) if cid else _("No cashier"), n, round(float(avg), 2)) for cid, n, avg in rows),
        key=lambda row: row[0],
    )
    since = utcnow() - timedelta(weeks=weeks)
    weekly: dict[date, list[int]] = {}
    for created, score in session.execute(select(Rating.created_at, Rating.score).where(
            Rating.merchant_id == merchant.id, Rating.created_at >= since)):
        weekly.setdefault(week_start(created), []).append(score)
    by_week = [(week, len(s), round(sum(s) / len(s), 2)) for week, s in sorted(weekly.items())]
    answered = session.scalars(select(Complaint).where(Complaint.merchant_id == merchant.id,
                                                       Complaint.first_answer_at.is_not(None))).all()
    average = None
    if answered:
        total = sum((time_to_first_answer(c) for c in answered), timedelta())
        average = total / len(answered)
    return RatingReport(by_cashier, by_week, format_duration(average))


def latest_rating(session: Session, membership: Membership, purchase: Purchase | None = None) -> Rating | None:
    """The rating of ``purchase``, or the member's latest rating when no purchase is named."""
    query = select(Rating).where(Rating.membership_id == membership.id)
    if purchase is not None:
        query = query.where(Rating.purchase_id == purchase.id)
    return session.scalar(query.order_by(Rating.id.desc()).limit(1))


def has_answered(session: Session, merchant: Merchant, user_id: int) -> bool:
    return session.scalar(select(Response.id).join(Survey).where(
        Survey.merchant_id == merchant.id, Response.user_id == user_id, Response.status == "completed"
    ).limit(1)) is not None


def unrated_purchase(session: Session, membership: Membership) -> Purchase | None:
    """The member's latest purchase if it is not rated yet (offered on the wallet card)."""
    rated = select(Rating.id).where(Rating.purchase_id == Purchase.id).exists()
    row = session.execute(select(Purchase, rated).where(Purchase.membership_id == membership.id,
                                                        Purchase.refunded_at.is_(None))
                          .order_by(Purchase.id.desc()).limit(1)).first()
    if row is None or row[1]:
        return None
    return row[0]


# --------------------------------------------------------------------------- privacy


def erase_customer(session: Session, user_id: int) -> None:
    """Answers, comments and the person's messages go; counts and paid rewards stay."""
    response_ids = select(Response.id).where(Response.user_id == user_id)
    session.execute(delete(Answer).where(Answer.response_id.in_(response_ids)))
    session.execute(update(Response).where(Response.user_id == user_id).values(answers_deleted_at=utcnow()))
    memberships = select(Membership.id).where(Membership.user_id == user_id)
    session.execute(update(Rating).where(Rating.membership_id.in_(memberships)).values(comment=""))
    session.execute(delete(ComplaintMessage).where(ComplaintMessage.author_id == user_id,
                                                   ComplaintMessage.from_merchant.is_(False)))
    session.execute(update(ComplaintMessage).where(ComplaintMessage.author_id == user_id).values(author_id=None))


def customer_data(session: Session, user_id: int) -> dict:
    responses = []
    for response in session.scalars(select(Response).where(Response.user_id == user_id)):
        responses.append({
            "survey": response.survey.title, "status": response.status,
            "completed_at": response.completed_at.isoformat() if response.completed_at else None,
            "answers": [{"question_id": a.question_id, "number": a.number, "text": a.text}
                        for a in saved_answers(session, response).values()],
        })
    ratings = [{"purchase_id": r.purchase_id, "score": r.score, "comment": r.comment,
                "created_at": r.created_at.isoformat()}
               for r in session.scalars(select(Rating).join(Membership, Membership.id == Rating.membership_id)
                                        .where(Membership.user_id == user_id))]
    return {"responses": responses, "ratings": ratings}

