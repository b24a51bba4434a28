"""Structured opening hours: one interval per weekday in the network's time zone, "open now".

A day is ``(opens, closes)`` in minutes after local midnight. ``closes <= opens`` means the
shop closes after midnight (22:00-02:00 is open until 2 am the next morning); ``(0, 1440)`` is
open around the clock; a weekday without hours is closed.

``parse_text`` reads the free text owners used to type ("Mon–Fri 9:00–20:00, Sat 10:00–18:00",
"Daily 10:00–01:00", "Open 24 hours, every day", "9-21"); the migration
``core_0010_price_items`` carries a copy of it (migrations do not import the application).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from flask_babel import gettext as _
from sqlalchemy import Integer, and_, bindparam, delete, exists, or_, select
from sqlalchemy.orm import Session

from webapp.errors import ValidationFailed
from webapp.models import Merchant, MerchantHours
from webapp.timezones import zone

DAY = 1440
Hours = dict[int, tuple[int, int]]  # weekday (0 = Monday) -> (opens, closes)

_DAY_NAMES = {
    "mon": 0, "monday": 0, "пн": 0, "пон": 0, "понедельник": 0,
    "tue": 1, "tues": 1, "tuesday": 1, "вт": 1, "вторник": 1,
    "wed": 2, "wednesday": 2, "ср": 2, "среда": 2,
    "thu": 3, "thur": 3, "thurs": 3, "thursday": 3, "чт": 3, "четверг": 3,
    "fri": 4, "friday": 4, "пт": 4, "пятница": 4,
    "sat": 5, "saturday": 5, "сб": 5, "суббота": 5,
    "sun": 6, "sunday": 6, "вс": 6, "воскресенье": 6,
}  # fmt: skip
_EVERY_DAY = re.compile(r"\b(daily|every\s*day|ежедневно|каждый\s+день|без\s+выходных)\b", re.I)
_ALL_DAY = re.compile(r"(24\s*/\s*7|24\s*(hours|hrs|h|часа)\b|round the clock|круглосуточно)", re.I)
_RANGE = re.compile(
    r"(\d{1,2})(?:[:.](\d{2}))?\s*(?:-|–|—|to|до)\s*(\d{1,2})(?:[:.](\d{2}))?", re.I
)
_DAY_WORD = re.compile(r"[^\W\d_]+")
_DASHES = re.compile(r"\s*(?:-|–|—)\s*")


def _minutes(hour: str, minute: str | None) -> int | None:
    h, m = int(hour), int(minute or 0)
    if m > 59 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def _days(text: str) -> list[int] | None:
    """Weekdays named in ``text`` ("Mon–Fri", "Sat, Sun", "Пн-Пт"); [] when none, None if unclear."""
    text = text.strip().lower().rstrip(":")
    if not text:
        return []
    if _EVERY_DAY.search(text):
        return list(range(7))
    found: list[int] = []
    for part in re.split(r"[,/&]|\band\b|\bи\b", text):
        part = part.strip().rstrip(".")
        if not part:
            continue
        ends = _DASHES.split(part)
        if len(ends) == 2:
            first, last = _DAY_NAMES.get(ends[0].strip(".")), _DAY_NAMES.get(ends[1].strip("."))
            if first is None or last is None:
                return None
            day = first
            while True:
                found.append(day)
                if day == last:
                    break
                day = (day + 1) % 7
        elif part.strip(".") in _DAY_NAMES:
            found.append(_DAY_NAMES[part.strip(".")])
        else:
            return None
    return found


def parse_text(text: str | None) -> Hours | None:
    """Hours read from free text, or None when any part of it is not understood."""
    text = (text or "").strip()
    if not text or len(text) > 1000:
        return None
    hours: Hours = {}
    parts = [
        part for part in re.split(r"[\n;,]+(?![^\d\n;,]*\d\s*(?:-|–|—))", text) if part.strip()
    ]
    # A comma may separate days ("Sat, Sun 10-18"), so split only before a part with its own range.
    pending_days: list[int] = []
    for part in parts:
        match = _RANGE.search(part)
        if match is None:
            if _ALL_DAY.search(part):
                before = _ALL_DAY.split(part)[0]
                before = re.sub(r"\bopen\b|открыто", "", before, flags=re.I)
                days = _days(before)
                if days is None:
                    return None
                for day in days or pending_days or range(7):
                    hours[day] = (0, DAY)
                pending_days = []
                continue
            days = _days(part)
            if not days:
                return None
            if hours and all(v == (0, DAY) for v in hours.values()):
                continue  # "Open 24 hours, every day"
            pending_days = days
            continue
        days = _days(part[: match.start()])
        if days is None or part[match.end() :].strip(" .;"):
            return None
        opens, closes = _minutes(match[1], match[2]), _minutes(match[3], match[4])
        if opens is None or closes is None or opens == DAY:
            return None
        if closes == opens:
            return None
        if closes == 0:
            closes = DAY
        for day in (pending_days + days) or range(7):
            hours[day] = (opens, closes)
        pending_days = []
    return hours or None


def is_open(hours: Hours, moment: datetime, tz_name: str | None) -> bool:
    """Whether ``hours`` (local to ``tz_name``) are open at ``moment``."""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(zone(tz_name))
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    today = hours.get(weekday)
    if today:
        opens, closes = today
        if opens <= minute and (minute < closes or closes <= opens):
            return True
    yesterday = hours.get((weekday - 1) % 7)
    if yesterday:
        opens, closes = yesterday
        if closes <= opens and minute < closes:
            return True
    return False


def open_now_condition(merchant_id_column, moment: datetime, tz_name: str | None):
    """A SQL condition: the merchant in ``merchant_id_column`` is open at ``moment`` (bound values)."""
    clock = open_now_params(moment, tz_name)
    return _open_clause(merchant_id_column, clock["open_weekday"], clock["open_yesterday"], clock["open_minute"])


def open_now_clause(merchant_id_column):
    """``open_now_condition`` with bound parameters (``open_weekday``, ``open_yesterday``,
    ``open_minute``; values from ``open_now_params``), for statements built once and run often."""
    return _open_clause(
        merchant_id_column,
        bindparam("open_weekday", type_=Integer),
        bindparam("open_yesterday", type_=Integer),
        bindparam("open_minute", type_=Integer),
    )


def _open_clause(merchant_id_column, weekday, yesterday, minute):
    h = MerchantHours
    overnight = h.closes <= h.opens
    return exists(
        select(h.id).where(
            h.merchant_id == merchant_id_column,
            or_(
                and_(h.weekday == weekday, h.opens <= minute, or_(h.closes > minute, overnight)),
                and_(h.weekday == yesterday, overnight, h.closes > minute),
            ),
        )
    )


def open_now_params(moment: datetime, tz_name: str | None) -> dict[str, int]:
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(zone(tz_name))
    weekday = local.weekday()
    return {"open_weekday": weekday, "open_yesterday": (weekday - 1) % 7,
            "open_minute": local.hour * 60 + local.minute}


def open_around_the_clock(text: str | None) -> bool:
    """Whether opening hours written as free text say "always open", in any of the site's
    languages (sample content about opening earlier makes no sense there)."""
    folded = (text or "").casefold()
    if any(words in folded for words in ("24/7", "круглосуточно", "24 hours", "тәулік бойы", "денонощно")):
        return True
    parsed = parse_text(text)
    return bool(parsed) and len(parsed) == 7 and all(day == (0, DAY) for day in parsed.values())


def hours_of(merchant: Merchant) -> Hours:
    return {row.weekday: (row.opens, row.closes) for row in merchant.hours}


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class DayForm:
    weekday: int
    closed: bool
    opens: str
    closes: str


def parse_clock(text: str, *, closing: bool) -> int | None:
    match = re.fullmatch(r"\s*(\d{1,2})(?:[:.](\d{2}))?\s*", text or "")
    if match is None:
        return None
    minutes = _minutes(match[1], match[2])
    if minutes is None or (minutes == DAY and not closing):
        return None
    return DAY if closing and minutes == 0 else minutes


def parse_form(days: list[DayForm]) -> tuple[Hours, dict[str, str]]:
    """Hours from the owner's form, and messages keyed ``opens-<day>`` / ``closes-<day>``."""
    hours: Hours = {}
    errors: dict[str, str] = {}
    for day in days:
        if day.closed:
            continue
        opens = parse_clock(day.opens, closing=False)
        closes = parse_clock(day.closes, closing=True)
        if opens is None:
            errors[f"opens-{day.weekday}"] = _("Enter a time like 9:00.")
        if closes is None:
            errors[f"closes-{day.weekday}"] = _("Enter a time like 21:00 (24:00 for midnight).")
        if opens is not None and closes is not None:
            if opens == closes:
                errors[f"closes-{day.weekday}"] = _(
                    "Opening and closing times are the same; for around the clock enter 0:00 to 24:00."
                )
            else:
                hours[day.weekday] = (opens, closes)
    return hours, errors


def save_hours(session: Session, merchant: Merchant, hours: Hours) -> None:
    """Replace the merchant's weekly hours (the caller commits)."""
    for weekday, (opens, closes) in hours.items():
        if not (0 <= weekday <= 6 and 0 <= opens < DAY and 0 < closes <= DAY and opens != closes):
            raise ValidationFailed(_("These opening hours are not valid."))
    session.execute(delete(MerchantHours).where(MerchantHours.merchant_id == merchant.id))
    session.add_all(
        MerchantHours(merchant_id=merchant.id, weekday=weekday, opens=opens, closes=closes)
        for weekday, (opens, closes) in sorted(hours.items())
    )
    session.flush()
    session.expire(merchant, ["hours"])
