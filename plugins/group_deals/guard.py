"""Rate limits on failed voucher lookups at the till, per account and per IP (Flask-Limiter's storage).

Redis when ``NEIGHBOURLY_REDIS_URL`` is set, so every worker process shares the counts.
"""

from __future__ import annotations

from flask import current_app, has_request_context, request
from flask_babel import gettext as _
from flask_login import current_user
from limits import parse_many

from plugins.group_deals.services import TooManyAttempts
from webapp.plugin_api import limiter

DEFAULT_LIMITS = "10 per minute;60 per hour"


def failed_lookup_guard(failed: bool) -> None:
    """Before a lookup (``failed=False``): refuse when a limit is spent. After a miss: count it."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    keys = []
    if has_request_context():
        if current_user and current_user.is_authenticated:
            keys.append(f"account:{current_user.id}")
        keys.append(f"ip:{request.remote_addr or 'unknown'}")
    items = parse_many(current_app.config.get("GROUP_DEALS_LOOKUP_LIMITS", DEFAULT_LIMITS))
    for key in keys:
        for item in items:
            if failed:
                limiter.limiter.hit(item, "group_deals_lookup", key)
            elif not limiter.limiter.test(item, "group_deals_lookup", key):
                raise TooManyAttempts(_("Too many wrong voucher codes; wait a minute and try again."))
