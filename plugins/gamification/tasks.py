"""Queue work of the gamification plugin: the level-up e-mail and the nightly level check."""

from __future__ import annotations

import logging

from flask_babel import gettext as _
from sqlalchemy import select

from webapp.plugin_api import app_for_task, rate_number

log = logging.getLogger(__name__)


def announce_level_up(merchant, purchase) -> None:
    """After commit: e-mail a level-up made by this purchase, once (the claim is a guarded UPDATE).

    No commit here: the outbox runner commits it with the message's completion.
    """
    from plugins.gamification import services
    from plugins.gamification.models import Level
    from webapp.plugin_api import Membership, User, db, in_recipient_language, send_email

    for status in services.claim_level_up_emails(db.session, purchase.id):
        user = db.session.scalar(
            select(User).join(Membership, Membership.user_id == User.id)
            .where(Membership.id == status.membership_id)
        )
        level = db.session.scalar(
            select(Level).where(Level.merchant_id == merchant.id, Level.position == status.effective)
        )
        if user is None or not user.email or user.erased_at is not None or level is None:
            continue
        with in_recipient_language(user, merchant.network):
            send_email(
                user.email,
                _("You reached %(level)s at %(merchant)s", level=level.name, merchant=merchant.name),
                _("Congratulations! You are now %(level)s at %(merchant)s: you earn %(rate)s%% cashback.",
                  level=level.name, merchant=merchant.name, rate=rate_number(level.cashback_bp)),
            )


def check_all() -> int:
    """Periodic: recompute every level of every merchant with the plugin on."""
    from flask import has_app_context

    from webapp.plugin_api import db

    if has_app_context():
        db.session.commit()
    with app_for_task().app_context():
        from plugins.gamification import services
        from webapp.plugin_api import Merchant, merchant_ids_with_plugin, plugin_settings

        try:
            total = 0
            merchant_ids = db.session.scalars(merchant_ids_with_plugin("gamification")).all()
            for merchant_id in merchant_ids:
                merchant = db.session.get(Merchant, merchant_id)
                total += services.check_levels(db.session, merchant, plugin_settings(merchant, "gamification"))
            if total:
                log.warning("gamification: %s stored levels differed from the data and were fixed", total)
            return total
        finally:
            db.session.remove()
