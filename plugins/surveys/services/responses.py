"""Answering surveys and paying their rewards; invitations after a purchase; results and exports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

from flask_babel import gettext as _
from flask_babel import pgettext
from sqlalchemy import bindparam, case, delete, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from plugins.surveys.models import (
    MAX_LONG,
    MAX_OPTION_KEY,
    MAX_SHORT,
    Answer,
    Invitation,
    Question,
    Response,
    Survey,
)
from plugins.surveys.services.base import PAGE_SIZE, SURVEY_REWARD, _upsert_nothing, reward_options
from webapp.plugin_api import (
    Conflict,
    CsvVariant,
    LedgerReason,
    Membership,
    Merchant,
    NotFound,
    Posting,
    Purchase,
    RewardUnavailable,
    User,
    ValidationFailed,
    hooks_for,
    merchant_zone,
    post,
    sorted_by_order,
    unit_of_work,
    utcnow,
)
from webapp.plugin_api import (
    points as format_points,
)

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
    with unit_of_work(session):
        response_id = _start(session, survey, user)
        # Touching the row locks it, so a completion running now cannot interleave with us.
        still_open = session.execute(
            update(Response).where(Response.id == response_id, Response.status == "started")
            .values(started_at=Response.started_at).execution_options(synchronize_session=False)
        ).rowcount
        if not still_open:
            raise Conflict(_("You have already completed this survey. Thank you!"))
        _write_answers(session, response_id, answers)
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
        with unit_of_work(session):
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
    except RewardUnavailable as refusal:
        # The promised certificate has run out: nothing is completed or paid (the block rolled
        # back), the answers stay.
        save_progress(session, survey, user, form)
        raise RewardUnavailable(_(
            "%(reason)s The survey cannot be completed with its reward now; your answers are saved.",
            reason=refusal.message,
        )) from refusal
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
    reason = _("Survey: %(title)s", title=survey.title)  # for the plugin giving another reward
    if points > 0:
        post(session, [Posting(
            membership.id, survey.merchant_id, "reward", points,
            LedgerReason(SURVEY_REWARD, {"title": survey.title, "survey": survey.id}), source="surveys",
            object_ref=f"surveys:response:{response_id}",
        )], now)
    if option:
        merchant = membership.merchant
        try:
            with session.begin_nested():
                granted = hooks_for(merchant).neighbourly_grant_reward(
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
    with unit_of_work(session):
        session.execute(delete(Answer).where(Answer.response_id == response.id))
        response.answers_deleted_at = response.answers_deleted_at or utcnow()


@lru_cache(maxsize=1)
def _open_surveys_statement():
    """A merchant's open surveys a person has not completed, built once (every wallet card and
    every sale's invitations run it)."""
    done = select(Response.survey_id).where(
        Response.user_id == bindparam("user_id"), Response.status == "completed"
    )
    return select(Survey).where(
        Survey.merchant_id == bindparam("merchant_id"), Survey.status == "open", Survey.id.not_in(done)
    ).order_by(Survey.id)


def open_surveys_for(session: Session, merchant: Merchant, membership: Membership) -> list[Survey]:
    """Surveys this member may answer now and has not completed."""
    surveys = session.scalars(
        _open_surveys_statement(), {"merchant_id": merchant.id, "user_id": membership.user_id}
    )
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


def export_rows(session: Session, survey: Survey, variant: CsvVariant | None = None) -> list[list[object]]:
    """The completed responses as rows; ``webapp.csvfiles`` neutralises formula-like cells.

    For people the header is in the reader's language and the time local to the network; for
    programs (``variant.machine``) the header is stable English and the time ISO 8601 UTC."""
    machine = variant is None or variant.machine
    questions = list(survey.questions)
    if machine:
        header = ["response", "completed_at"]
    else:
        header = [pgettext("CSV column", "Response"), pgettext("CSV column", "Completed at")]
    header += [q.text for q in questions]
    zone = merchant_zone(session, survey.merchant_id)
    answers: dict[int, dict[int, Answer]] = {}
    for answer in _answers_of(session, survey):
        answers.setdefault(answer.response_id, {})[answer.question_id] = answer
    responses = session.scalars(select(Response).where(
        Response.survey_id == survey.id, Response.status == "completed").order_by(Response.id))
    rows: list[list[object]] = [list(header)]
    for response in responses:
        given = answers.get(response.id, {})
        if response.completed_at is None:
            completed = ""
        elif machine:
            completed = response.completed_at.isoformat()
        else:
            completed = response.completed_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        row = [str(response.id), completed]
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
