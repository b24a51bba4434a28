"""E-mail to the owner when a low rating opens a complaint (queued after the rating is committed)."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from webapp.plugin_api import StaffRole, User, db, in_recipient_language, public_url, send_email


def notify_owner_of_complaint(merchant, complaint, rating) -> None:
    owners = db.session.scalars(
        select(User).join(StaffRole, StaffRole.user_id == User.id)
        .where(StaffRole.merchant_id == merchant.id, StaffRole.role == "owner")
    ).all()
    link = public_url("surveys.complaint", merchant_slug=merchant.slug, complaint_id=complaint.id)
    for owner in owners:
        if not owner.email:
            continue
        with in_recipient_language(owner, merchant.network):
            text = _(
                "A customer rated a visit %(score)s of 5 and wrote:\n\n%(comment)s\n\n"
                "Answer them in the complaint thread (the customer sees your answer on their card):\n%(link)s",
                score=rating.score, comment=rating.comment or _("(no comment)"), link=link,
            )
            subject = _("Complaint: a customer rated a visit %(score)s of 5", score=rating.score)
            send_email(owner.email, subject, text)
