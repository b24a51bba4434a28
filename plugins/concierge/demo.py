"""Sample content for the demo street: topics, FAQ entries in the owner's language and a couple of
threads, one answered and one still open."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugins.concierge import services
from plugins.concierge.models import AskedQuestion, FaqEntry
from webapp.plugin_api import Membership, Merchant, User, utcnow


def add_demo_content(session: Session, merchant: Merchant) -> None:
    if session.scalar(select(func.count(FaqEntry.id)).where(FaqEntry.merchant_id == merchant.id)):
        return
    language = str(get_locale() or merchant.network.default_locale)
    services.save_topic(session, merchant, _("Opening hours and delivery"), None)
    orders = services.save_topic(session, merchant, _("Orders and gift cards"), None)
    entries = [
        (
            _("When are you open?"),
            _(
                "Every day from 9:00 to 21:00, on Sundays until 18:00. The hours are also on our page."
            ),
        ),
        (
            _("Do you deliver?"),
            _(
                "Yes, within two kilometres, for orders from our page or by phone. Delivery takes about an hour."
            ),
        ),
        (
            _("Can I pay with points?"),
            _(
                "Yes: tell the cashier how many points to use; one point is worth one tenge of the price."
            ),
        ),
        (
            _("Do you sell gift cards?"),
            _(
                "Yes, gift cards of any amount are sold at the till and can be used on any purchase."
            ),
        ),
    ]
    for question, answer in entries:
        services.save_faq(session, merchant, question, answer, language)
    members = list(
        session.scalars(
            select(Membership)
            .where(Membership.merchant_id == merchant.id, Membership.left_at.is_(None))
            .order_by(Membership.id)
            .limit(2)
        )
    )
    owner_id = services.owner_id(session, merchant.id)
    owner = session.get(User, owner_id) if owner_id else None
    now = utcnow()
    threads = [
        (
            _("Can I order a cake for Saturday with a name on it?"),
            _(
                "Of course! Tell us the name and the size by Thursday and it will be ready on Saturday morning."
            ),
        ),
        (_("Do you have gluten-free options?"), None),
    ]
    for membership, (text, answer) in zip(members, threads, strict=False):
        user = session.get(User, membership.user_id)
        if session.scalar(
            select(AskedQuestion.id).where(
                AskedQuestion.merchant_id == merchant.id, AskedQuestion.user_id == user.id
            )
        ):
            continue
        asked = now - timedelta(hours=5)
        question = services.ask(
            session,
            merchant,
            services.Asker(user=user),
            text,
            topic_id=orders.id,
            notify=False,
            locale=language,
            now=asked,
            send_mail=False,
        )
        if answer and owner is not None:
            services.reply(
                session, merchant, question, owner, answer, now=asked + timedelta(minutes=42)
            )
    session.flush()
