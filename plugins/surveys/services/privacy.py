"""A customer's survey data: export and erasure."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from plugins.surveys.models import Answer, ComplaintMessage, Rating, Response
from plugins.surveys.services.responses import saved_answers
from webapp.plugin_api import Membership, utcnow

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
