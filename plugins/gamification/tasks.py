"""Queue work of the gamification plugin: the level-up e-mail and the nightly level check."""

from __future__ import annotations

import logging

from flask_babel import gettext as _
from sqlalchemy import select

from webapp.plugin_api import merchant_task, rate_number

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


@merchant_task("gamification")
def check_all(session, merchant) -> int:
    """Periodic: recompute every level of every merchant with the plugin on; returns how many
    stored levels differed from the data (and were fixed)."""
    from plugins.gamification import services
    from webapp.plugin_api import plugin_settings

    fixed = services.check_levels(session, merchant, plugin_settings(merchant, "gamification"))
    if fixed:
        log.warning("gamification: %s stored levels of %s differed from the data and were fixed", fixed, merchant.slug)
    return fixed
