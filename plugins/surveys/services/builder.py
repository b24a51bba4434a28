"""The survey builder: surveys, their settings, questions and status."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from plugins.surveys.models import (
    AUDIENCES,
    MAX_CHOICE,
    MAX_CHOICES,
    MAX_LONG,
    MAX_QUESTION,
    MAX_REWARD_LABEL,
    MAX_STATUS,
    MAX_TITLE,
    QUESTION_KINDS,
    Answer,
    Question,
    Survey,
)
from plugins.surveys.services.base import MAX_QUESTIONS, MAX_REWARD, TEMPLATES, reward_options
from webapp.plugin_api import Merchant, NotFound, ValidationFailed, unit_of_work

# --------------------------------------------------------------------------- builder


def create_survey(session: Session, merchant: Merchant, template: str) -> Survey:
    """A draft survey with the template's questions (the owner adjusts them in the builder)."""
    spec = TEMPLATES.get(template)
    if spec is None:
        raise ValidationFailed(_("Choose a template to start from."), errors={"template": _("Choose a template to start from.")})
    with unit_of_work(session):
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
    with unit_of_work(session):
        survey.title, survey.intro, survey.reward_points = title, intro, reward
        survey.reward_option, survey.reward_label = option_key, option_label
        survey.audience, survey.audience_days = audience, days if audience == "recent" else None
        survey.audience_status = status_level if audience == "status" else ""
        survey.starts_on, survey.ends_on, survey.quota = starts_on, ends_on, quota
        survey.public = form.get("public") in ("1", "on", "true")
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
    with unit_of_work(session):
        question = Question(survey_id=survey.id, position=position, **data)
        session.add(question)
    return question


def update_question(session: Session, merchant: Merchant, question_id: int, form: Mapping[str, str]) -> Question:
    question = get_question(session, merchant, question_id)
    data = clean_question(form)
    with unit_of_work(session):
        for key, value in data.items():
            setattr(question, key, value)
    return question


def delete_question(session: Session, merchant: Merchant, question_id: int) -> Survey:
    """Removes the question and the answers given to it."""
    question = get_question(session, merchant, question_id)
    survey = question.survey
    with unit_of_work(session):
        session.execute(delete(Answer).where(Answer.question_id == question.id))
        session.delete(question)
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
        with unit_of_work(session):
            ordered[index], ordered[other] = ordered[other], ordered[index]
            for position, item in enumerate(ordered, start=1):
                item.position = position
        session.refresh(survey)
    return survey


def set_status(session: Session, merchant: Merchant, survey_id: int, status: str) -> Survey:
    survey = get_survey(session, merchant, survey_id)
    if status not in ("open", "closed"):
        raise ValidationFailed(_("Unknown action."))
    if status == "open" and not survey.questions:
        raise ValidationFailed(_("Add at least one question before opening the survey."))
    with unit_of_work(session):
        survey.status = status
    return survey
