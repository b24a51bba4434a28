"""Rate limits on failed certificate lookups, per account and per IP, in Flask-Limiter's storage.

The storage is Redis when ``NEIGHBOURLY_REDIS_URL`` is set, so every worker process shares the
counts; ``memory://`` (development, tests) counts per process.
"""

from __future__ import annotations

from flask import current_app, has_request_context, request
from flask_babel import gettext as _
from flask_login import current_user
from limits import parse_many

from plugins.cross_marketing.services import TooManyAttempts
from webapp.plugin_api import limiter

DEFAULT_LIMITS = "10 per minute;60 per hour"


def _items():
    return parse_many(current_app.config.get("CROSS_MARKETING_LOOKUP_LIMITS", DEFAULT_LIMITS))


def _keys() -> list[str]:
    keys = []
    if has_request_context():
        if current_user and current_user.is_authenticated:
            keys.append(f"account:{current_user.id}")
        keys.append(f"ip:{request.remote_addr or 'unknown'}")
    return keys


def failed_lookup_guard(failed: bool) -> None:
    """Before a lookup (``failed=False``): refuse when a limit is spent. After a miss: count it."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    strategy = limiter.limiter
    for key in _keys():
        for item in _items():
            identifiers = ("cross_marketing_lookup", key)
            if failed:
                strategy.hit(item, *identifiers)
            elif not strategy.test(item, *identifiers):
                raise TooManyAttempts(_("Too many wrong certificate codes; wait a minute and try again."))
