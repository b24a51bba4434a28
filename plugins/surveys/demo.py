"""Sample surveys for the demo street: an open survey with answers, visit ratings and a complaint."""

from __future__ import annotations

import random
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugins.surveys import services
from plugins.surveys.models import Invitation, Rating, Survey
from webapp.plugin_api import (
    Membership,
    Merchant,
    Purchase,
    StaffRole,
    User,
    open_around_the_clock,
    unit_of_work,
)

INVITED = 30
RESPONDENTS = 12
RATED_VISITS = 24


def _answers(survey: Survey, rng: random.Random, always_open: bool) -> dict[str, list[str]]:
    ideas = [_("Faster service at rush hour") if always_open else _("Longer opening hours on Sundays"),
             _("More places to wait inside"), _("Card payments at the counter"),
             _("A loyalty gift on birthdays"), ""]
    answers: dict[str, list[str]] = {}
    for question in survey.questions:
        if question.kind == "rating":
            value = str(rng.choice((3, 4, 4, 5, 5, 5)))
        elif question.kind == "nps":
            value = str(rng.choice((6, 7, 8, 9, 9, 10, 10)))
        elif question.options:
            value = rng.choice(question.options)
        else:
            value = rng.choice(ideas)
        answers[f"q{question.id}"] = [value]
    return answers


def add_demo_surveys(session: Session, merchant: Merchant, neighbours: list[Merchant]) -> None:
    if services.list_surveys(session, merchant):
        return
    rng = random.Random(merchant.id)
    survey = services.create_survey(session, merchant, "how_did_we_do")
    options = [o for o in services.reward_options(session, merchant) if o.available]
    services.update_settings(session, merchant, survey.id, {
        "title": survey.title, "reward_points": "100", "reward_option": options[0].key if options else "",
        "audience": "all", "public": "1",
    })
    services.set_status(session, merchant, survey.id, "open")
    members = list(session.scalars(
        select(Membership).where(Membership.merchant_id == merchant.id, Membership.left_at.is_(None))
        .order_by(Membership.id).limit(INVITED)))
    with unit_of_work(session):
        for membership in members:
            session.add(Invitation(survey_id=survey.id, user_id=membership.user_id, emailed=False))
    for membership in members[:RESPONDENTS]:
        answers = _answers(survey, rng, open_around_the_clock(merchant.opening_hours))
        services.submit(session, survey, session.get(User, membership.user_id), answers)
    _rate_recent_visits(session, merchant, rng)


def _rate_recent_visits(session: Session, merchant: Merchant, rng: random.Random) -> None:
    """Ratings over the last weeks; one low rating opens a complaint the owner has answered."""
    visits = session.execute(
        select(Purchase, User)
        .join(Membership, Membership.id == Purchase.membership_id)
        .join(User, User.id == Membership.user_id)
        .where(Purchase.merchant_id == merchant.id, Purchase.refunded_at.is_(None))
        .order_by(Purchase.created_at.desc()).limit(RATED_VISITS)
    ).all()
    owner = session.scalar(select(User).join(StaffRole, StaffRole.user_id == User.id).where(
        StaffRole.merchant_id == merchant.id, StaffRole.role == "owner"))
    with unit_of_work(session):
        for index, (purchase, user) in enumerate(visits):
            low = index in (3, 11)
            score = rng.choice((1, 2)) if low else rng.choice((4, 5, 5, 5))
            comment = _("I waited twenty minutes and nobody came to help.") if low else ""
            rating = services.rate_visit(session, user, purchase.id, str(score), comment)
            session.execute(update(Rating).where(Rating.id == rating.id)
                            .values(created_at=purchase.created_at + timedelta(hours=2)))
            complaint = services.complaint_for_rating(session, rating.id) if low else None
            if complaint is not None and index == 11:
                services.answer_complaint(session, merchant, owner, complaint.id, _(
                    "We are sorry about the wait. We now have a second person at the counter at rush hour; "
                    "next time it is on us."))
