"""Ratings of visits and the complaints low ratings open; the rating report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugins.surveys.models import (
    MAX_COMMENT,
    MAX_MESSAGE,
    Complaint,
    ComplaintMessage,
    Rating,
    Response,
    Survey,
)
from plugins.surveys.services.base import APOLOGY_BONUS, LOW_SCORE, MAX_REWARD
from webapp.plugin_api import (
    Conflict,
    LedgerReason,
    Membership,
    Merchant,
    NotFound,
    Posting,
    Purchase,
    User,
    ValidationFailed,
    post,
    unit_of_work,
    utcnow,
    week_start,
)

# --------------------------------------------------------------------------- ratings and complaints


def staff_purchase(session: Session, user: User, purchase_id: int) -> Purchase | None:
    """A purchase at a business where ``user`` works, when it is not their own purchase."""
    from webapp.plugin_api import StaffRole

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
    if purchase.refunded_at is not None:  # an old QR code on a paper receipt: nothing to rate now
        raise Conflict(_("This purchase was refunded, so there is no visit to rate."))
    rating = Rating(merchant_id=purchase.merchant_id, purchase_id=purchase.id, membership_id=purchase.membership_id,
                    cashier_id=purchase.cashier_id, score=value, comment=comment)
    try:
        with unit_of_work(session):
            session.add(rating)
            session.flush()
            if value <= LOW_SCORE:
                complaint = Complaint(merchant_id=purchase.merchant_id, rating_id=rating.id,
                                      membership_id=purchase.membership_id, status="open")
                session.add(complaint)
                session.flush()
                if comment:
                    session.add(ComplaintMessage(complaint_id=complaint.id, from_merchant=False,
                                                 author_id=user.id, body=comment))
    except IntegrityError:
        raise Conflict(_("You have already rated this visit. Thank you!")) from None
    return rating


def complaint_for_rating(session: Session, rating_id: int) -> Complaint | None:
    return session.scalar(select(Complaint).where(Complaint.rating_id == rating_id))


@lru_cache(maxsize=1)
def _panel_counts_statement():
    """The dashboard panel's two counts as one statement, built once."""
    complaints = (
        select(func.count()).select_from(Complaint)
        .where(Complaint.merchant_id == bindparam("merchant_id"), Complaint.status == "open").scalar_subquery()
    )
    running = (
        select(func.count()).select_from(Survey)
        .where(Survey.merchant_id == bindparam("merchant_id"), Survey.status == "open").scalar_subquery()
    )
    return select(complaints, running)


def panel_counts(session: Session, merchant: Merchant) -> tuple[int, int]:
    """(open complaints, surveys running) for the dashboard panel, in one statement."""
    complaints_count, running_count = session.execute(_panel_counts_statement(), {"merchant_id": merchant.id}).one()
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


@lru_cache(maxsize=1)
def _customer_complaints_statement():
    """Built once: the wallet asks for every card on every visit."""
    return (
        select(Complaint)
        .where(Complaint.membership_id == bindparam("membership_id"))
        .order_by(Complaint.id.desc())
        .limit(5)
    )


def customer_complaints(session: Session, membership: Membership) -> list[Complaint]:
    return list(session.scalars(_customer_complaints_statement(), {"membership_id": membership.id}))


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
    with unit_of_work(session):
        session.add(ComplaintMessage(complaint_id=complaint.id, from_merchant=True, author_id=staff.id, body=body,
                                     created_at=now))
        # Only the first answer sets the clock; a racing second answer leaves it alone.
        session.execute(update(Complaint).where(Complaint.id == complaint.id, Complaint.first_answer_at.is_(None))
                        .values(first_answer_at=now).execution_options(synchronize_session=False))
    session.refresh(complaint)
    return complaint


def customer_reply(session: Session, user: User, complaint_id: int, body: str | None) -> Complaint:
    complaint = customer_complaint(session, user, complaint_id)
    body = _clean_message(body)
    with unit_of_work(session):
        session.add(ComplaintMessage(complaint_id=complaint.id, from_merchant=False, author_id=user.id, body=body))
    return complaint


def resolve_complaint(session: Session, merchant: Merchant, complaint_id: int) -> Complaint:
    complaint = get_complaint(session, merchant, complaint_id)
    if complaint.status != "resolved":
        with unit_of_work(session):
            complaint.status, complaint.resolved_at = "resolved", utcnow()
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
    with unit_of_work(session):
        paid = session.execute(
            update(Complaint).where(Complaint.id == complaint.id, Complaint.bonus_paid_at.is_(None))
            .values(bonus_paid_at=now, bonus_points=points).execution_options(synchronize_session=False)
        ).rowcount
        if paid:
            post(session, [Posting(
                complaint.membership_id, merchant.id, "reward", points, LedgerReason(APOLOGY_BONUS),
                source="surveys", object_ref=f"surveys:complaint:{complaint.id}",
            )], now)
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


@lru_cache(maxsize=1)
def _unrated_purchase_statement():
    """Built once: the wallet asks for every card on every visit."""
    rated = select(Rating.id).where(Rating.purchase_id == Purchase.id).exists()
    return (
        select(Purchase, rated)
        .where(Purchase.membership_id == bindparam("membership_id"), Purchase.refunded_at.is_(None))
        .order_by(Purchase.id.desc())
        .limit(1)
    )


@lru_cache(maxsize=1)
def _wallet_waiting_statement():
    """The wallet line's two questions in one statement, built once: the newest answered one of
    the member's latest five complaints, and the latest purchase with whether it is rated."""
    membership_id = bindparam("membership_id")
    latest_complaints = (
        select(Complaint.id, Complaint.first_answer_at)
        .where(Complaint.membership_id == membership_id)
        .order_by(Complaint.id.desc())
        .limit(5)
        .subquery()
    )
    answered = (
        select(latest_complaints.c.id).where(latest_complaints.c.first_answer_at.is_not(None))
        .order_by(latest_complaints.c.id.desc()).limit(1).scalar_subquery()
    )
    latest_purchase = (
        select(Purchase.id)
        .where(Purchase.membership_id == membership_id, Purchase.refunded_at.is_(None))
        .order_by(Purchase.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rated = select(Rating.id).where(Rating.purchase_id == latest_purchase).exists()
    return select(answered, latest_purchase, rated)


def wallet_waiting(session: Session, membership: Membership) -> tuple[int | None, int | None]:
    """(the id of the complaint the business answered, the id of the purchase to rate) for the
    wallet's line: what ``customer_complaints`` and ``unrated_purchase`` tell it, in one statement
    of ids instead of two loading rows."""
    answered, purchase_id, rated = session.execute(
        _wallet_waiting_statement(), {"membership_id": membership.id}
    ).one()
    return answered, (None if purchase_id is None or rated else purchase_id)


def unrated_purchase(session: Session, membership: Membership) -> Purchase | None:
    """The member's latest purchase if it is not rated yet (offered on the wallet card)."""
    row = session.execute(_unrated_purchase_statement(), {"membership_id": membership.id}).first()
    if row is None or row[1]:
        return None
    return row[0]
