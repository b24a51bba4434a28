"""Each network's time zone: what "today", "this week" and "this month" mean, and how times are shown."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

DEFAULT_TIMEZONE = "UTC"


@lru_cache(maxsize=64)
def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name``; an unknown or empty name falls back to UTC rather than failing a page."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def clean_timezone(name: str | None) -> str | None:
    """``name`` as a known IANA zone (case as the database spells it), or None."""
    wanted = (name or "").strip()
    if not wanted or len(wanted) > 64:
        return None
    if wanted in _known():
        return wanted
    folded = {known.lower(): known for known in _known()}
    return folded.get(wanted.lower())


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(available_timezones())


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    """The calendar day ``moment`` falls on in ``tz`` (naive values are UTC, as stored)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).date()


def today(tz: ZoneInfo, now: datetime | None = None) -> date:
    return local_date(now or datetime.now(UTC), tz)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Local midnight of ``day`` in ``tz``, as a UTC moment (what stored times are compared with)."""
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def month_start(moment: datetime, tz: ZoneInfo, months_back: int = 0) -> datetime:
    """The first local midnight of the month ``moment`` falls in (``months_back`` months earlier), in UTC."""
    local = local_date(moment, tz)
    index = local.year * 12 + local.month - 1 - months_back
    return day_start(date(index // 12, index % 12 + 1, 1), tz)


def week_start_day(moment: datetime, tz: ZoneInfo) -> date:
    """Monday of the ISO week ``moment`` falls in, counted in ``tz``."""
    day = local_date(moment, tz)
    return day - timedelta(days=day.weekday())


def merchant_zone(session: Session, merchant_id: int) -> ZoneInfo:
    """The time zone of a merchant's network, looked up once per session (a request or a task)."""
    from webapp.unit_of_work import current

    cache = current(session).zones
    found = cache.get(merchant_id)
    if found is None:
        from webapp.models import Merchant, Network

        name = session.scalar(
            select(Network.timezone)
            .join(Merchant, Merchant.network_id == Network.id)
            .where(Merchant.id == merchant_id)
        )
        found = cache[merchant_id] = zone(name)
    return found


def remember_merchant_zone(session: Session, merchant_id: int, found: ZoneInfo) -> None:
    """Give ``merchant_zone`` a zone already known (the sale's merchant is loaded with its network)."""
    from webapp.unit_of_work import current

    current(session).zones[merchant_id] = found


def network_zone(network) -> ZoneInfo:
    """The zone of a loaded network (or UTC when there is none)."""
    return zone(getattr(network, "timezone", None))


def use_network_zone(network) -> None:
    """Show this request's (or task's) times in ``network``'s zone: the page or letter is about it."""
    from flask import g
    from flask_babel import refresh

    name = getattr(network, "timezone", None) or DEFAULT_TIMEZONE
    if g.get("network_timezone") != name:
        g.network_timezone = name
        refresh()  # Flask-Babel caches the zone of the context on first use


def selected_timezone() -> str:
    """Flask-Babel's time zone: the network the page is about, else the first network on the
    site (a self-hosted street runs one), else UTC."""
    from flask import g

    name = g.get("network_timezone")
    if name is None:
        from webapp.extensions import db
        from webapp.models import Network

        name = db.session.scalar(select(Network.timezone).order_by(Network.id).limit(1))
        name = g.network_timezone = name or DEFAULT_TIMEZONE
    return name
