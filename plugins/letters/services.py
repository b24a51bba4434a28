"""The letters plugin's rules: templates, the once-only letter log, bonus codes, addresses, figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, case, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugins.letters import compose
from plugins.letters.models import (
    KINDS,
    MAX_BODY,
    MAX_SUBJECT,
    BonusCode,
    Letter,
    LetterTemplate,
    PostalAddress,
)
from webapp.plugin_api import (
    Membership,
    Merchant,
    NotFound,
    Purchase,
    User,
    ValidationFailed,
    merchants_with_plugin,
    unit_of_work,
    utcnow,
)

MAX_CODES_PER_UPLOAD = 5000
CODE_CLAIM_ATTEMPTS = 5
BATCH = 200


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class TemplateText:
    kind: str
    subject: str
    body: str
    bonus_pool: str
    customised: bool


def template_for(session: Session, merchant: Merchant, kind: str, locale: str | None = None) -> TemplateText:
    """The merchant's wording of ``kind``, or the default in ``locale`` (the reader's language;
    the network's when not given). A merchant's own words are theirs and are sent as written."""
    if kind not in KINDS:
        raise NotFound(_("No such letter."))
    row = session.scalar(
        select(LetterTemplate).where(LetterTemplate.merchant_id == merchant.id, LetterTemplate.kind == kind)
    )
    if row is not None:
        return TemplateText(kind, row.subject, row.body, row.bonus_pool, True)
    subject, body = compose.default_template(kind, locale or merchant.network.default_locale)
    return TemplateText(kind, subject, body, "", False)


def clean_template(subject: str | None, body: str | None, bonus_pool: str | None = "") -> tuple[str, str, str]:
    subject = " ".join((subject or "").split())
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    bonus_pool = " ".join((bonus_pool or "").split())
    errors: dict[str, str] = {}
    if not subject:
        errors["subject"] = _("Write a subject.")
    elif len(subject) > MAX_SUBJECT:
        errors["subject"] = _("The subject can have at most %(count)s characters.", count=MAX_SUBJECT)
    if not body:
        errors["body"] = _("Write the letter itself.")
    elif len(body) > MAX_BODY:
        errors["body"] = _("At most %(count)s characters; this has %(length)s.", count=MAX_BODY, length=len(body))
    for field, text in (("subject", subject), ("body", body)):
        unknown = compose.unknown_placeholders(text)
        if unknown and field not in errors:
            errors[field] = _(
                "Unknown placeholder: %(names)s. Use the ones listed below the form.",
                names=", ".join("{" + name + "}" for name in unknown),
            )
    if len(bonus_pool) > 60:
        errors["bonus_pool"] = _("The pool name can have at most 60 characters.")
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    return subject, body, bonus_pool


def save_template(
    session: Session, merchant: Merchant, kind: str, subject: str, body: str, bonus_pool: str = ""
) -> LetterTemplate:
    template_for(session, merchant, kind)  # unknown kinds are NotFound
    subject, body, bonus_pool = clean_template(subject, body, bonus_pool)
    with unit_of_work(session):
        row = session.scalar(
            select(LetterTemplate).where(LetterTemplate.merchant_id == merchant.id, LetterTemplate.kind == kind)
        )
        if row is None:
            row = LetterTemplate(merchant_id=merchant.id, kind=kind)
            session.add(row)
        row.subject, row.body, row.bonus_pool = subject, body, bonus_pool
    return row


# --------------------------------------------------------------------------- the letter log


@dataclass(frozen=True)
class PlannedLetter:
    kind: str
    channel: str
    status: str
    due_at: datetime
    with_bonus: str = ""  # pool name, "" for none


def claim_bonus_code(session: Session, merchant_id: int, pool: str, letter_id: int) -> BonusCode | None:
    """Give one unused code of ``pool`` to a letter; a conditional UPDATE decides between racers."""
    for _attempt in range(CODE_CLAIM_ATTEMPTS):
        candidate = session.scalar(
            select(BonusCode.id)
            .where(BonusCode.merchant_id == merchant_id, BonusCode.pool == pool, BonusCode.letter_id.is_(None))
            .order_by(BonusCode.id)
            .limit(1)
        )
        if candidate is None:
            return None
        claimed = session.execute(
            update(BonusCode)
            .where(BonusCode.id == candidate, BonusCode.letter_id.is_(None))
            .values(letter_id=letter_id, used_at=utcnow())
        ).rowcount
        if claimed == 1:
            return session.get(BonusCode, candidate)
    return None


def record_letters(
    session: Session,
    merchant: Merchant,
    membership: Membership,
    purchase: Purchase | None,
    planned: list[PlannedLetter],
    context: dict,
    dedupe_prefix: str,
) -> list[Letter]:
    """Insert the log rows of one occasion; ``[]`` when they exist already (nothing to send).

    ``(merchant_id, dedupe_key)`` is UNIQUE: when the worker retries or two workers run the same
    job, the database lets exactly one insert through. The rows go in inside a savepoint, so the
    loser of that race rolls back only its own inserts, and within the caller's unit of work, so
    the rows, the e-mails queued for them and (in the worker) the outbox message's completion
    commit together: a letter is sent exactly once.
    """
    letters = []
    context = dict(context)
    try:
        with unit_of_work(session), session.begin_nested():
            for plan in planned:
                letter = Letter(
                    merchant_id=merchant.id, membership_id=membership.id,
                    purchase_id=purchase.id if purchase else None, kind=plan.kind, channel=plan.channel,
                    status=plan.status, dedupe_key=f"{dedupe_prefix}:{plan.kind}:{plan.channel}",
                    context=dict(context), due_at=plan.due_at,
                    sent_at=utcnow() if plan.status == "sent" else None,
                )
                session.add(letter)
                session.flush()
                # One partner code per occasion: the postal copy of a thank-you encloses the same one.
                if plan.with_bonus and not context.get("bonus_code"):
                    code = claim_bonus_code(session, merchant.id, plan.with_bonus, letter.id)
                    if code is not None:
                        context.update(bonus_code=code.code, bonus_partner=code.partner)
                        letter.context = dict(context)
                letters.append(letter)
    except IntegrityError:
        return []  # another run logged this occasion first: its savepoint alone was rolled back
    return letters


def claim_scheduled(session: Session, letter_id: int) -> bool:
    """Move a scheduled e-mail to ``sent``; only one caller ever gets ``True``."""
    with unit_of_work(session):  # the caller's: the claim commits with the e-mail it queues
        done = session.execute(
            update(Letter)
            .where(Letter.id == letter_id, Letter.status == "scheduled")
            .values(status="sent", sent_at=utcnow())
        ).rowcount
    return done == 1


def cancel_scheduled(session: Session, letter_id: int) -> None:
    with unit_of_work(session):
        session.execute(
            update(Letter).where(Letter.id == letter_id, Letter.status == "scheduled").values(status="cancelled")
        )


def due_letter_ids(session: Session, now: datetime, limit: int = BATCH) -> list[int]:
    """Scheduled e-mails whose time has come (a safety net for a lost queue entry)."""
    return list(
        session.scalars(
            select(Letter.id)
            .where(Letter.status == "scheduled", Letter.due_at <= now)
            .order_by(Letter.due_at, Letter.id)
            .limit(limit)
        )
    )


def merchants_with_letters(session: Session) -> list[Merchant]:
    return merchants_with_plugin(session, "letters")


def winback_candidates(
    session: Session, merchant: Merchant, now: datetime, days: int, limit: int = BATCH
) -> list[Membership]:
    """Open cards whose last visit is more than ``days`` ago and that got no win-back since."""
    cutoff = now - timedelta(days=days)
    already = exists().where(
        Letter.membership_id == Membership.id, Letter.kind == "winback",
        Letter.created_at > Membership.last_purchase_at,
    )
    return list(
        session.scalars(
            select(Membership)
            .where(
                Membership.merchant_id == merchant.id, Membership.left_at.is_(None),
                Membership.last_purchase_at.is_not(None), Membership.last_purchase_at < cutoff,
                ~already,
            )
            .order_by(Membership.last_purchase_at, Membership.id)
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- bonus codes


def add_codes(session: Session, merchant: Merchant, pool: str, partner: str, raw: str) -> int:
    """Add one code per line to a pool; duplicates (in the text or the pool) count once."""
    pool = " ".join((pool or "").split())
    partner = " ".join((partner or "").split())
    errors: dict[str, str] = {}
    if not pool or len(pool) > 60:
        errors["pool"] = _("Name the pool (at most 60 characters), e.g. “cinema”.")
    if len(partner) > 120:
        errors["partner"] = _("The partner's name can have at most 120 characters.")
    codes = []
    for line in (raw or "").splitlines():
        code = line.strip()
        if code and code not in codes:
            codes.append(code)
    if not codes:
        errors["codes"] = _("Paste at least one code, one per line.")
    elif len(codes) > MAX_CODES_PER_UPLOAD:
        errors["codes"] = _("At most %(count)s codes at a time.", count=MAX_CODES_PER_UPLOAD)
    elif any(len(code) > 80 for code in codes):
        errors["codes"] = _("A code can have at most 80 characters.")
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    with unit_of_work(session):
        existing = set(
            session.scalars(
                select(BonusCode.code).where(
                    BonusCode.merchant_id == merchant.id, BonusCode.pool == pool, BonusCode.code.in_(codes)
                )
            )
        )
        fresh = [code for code in codes if code not in existing]
        session.add_all(
            BonusCode(merchant_id=merchant.id, pool=pool, partner=partner, code=code) for code in fresh
        )
    return len(fresh)


@dataclass(frozen=True)
class PoolSummary:
    pool: str
    partner: str
    total: int
    used: int


def pool_summaries(session: Session, merchant: Merchant) -> list[PoolSummary]:
    rows = session.execute(
        select(
            BonusCode.pool, func.max(BonusCode.partner), func.count(BonusCode.id),
            func.count(BonusCode.letter_id),
        )
        .where(BonusCode.merchant_id == merchant.id)
        .group_by(BonusCode.pool)
        .order_by(BonusCode.pool)
        .limit(100)
    )
    return [PoolSummary(pool, partner or "", total, used) for pool, partner, total, used in rows]


# --------------------------------------------------------------------------- postal addresses


def clean_address(data: dict[str, str]) -> dict[str, str]:
    limits = {"recipient": 120, "street": 200, "city": 120, "postcode": 20, "country": 80}
    cleaned = {key: " ".join((data.get(key) or "").split()) for key in limits}
    errors: dict[str, str] = {}
    for key, limit in limits.items():
        if len(cleaned[key]) > limit:
            errors[key] = _("At most %(count)s characters.", count=limit)
    for key in ("recipient", "street", "city"):
        if not cleaned[key] and key not in errors:
            errors[key] = _("This line of the address is needed.")
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    return cleaned


def address_of(session: Session, user_id: int) -> PostalAddress | None:
    return session.scalar(select(PostalAddress).where(PostalAddress.user_id == user_id))


def save_address(session: Session, user: User, data: dict[str, str]) -> PostalAddress:
    cleaned = clean_address(data)
    with unit_of_work(session):
        row = address_of(session, user.id)
        if row is None:
            row = PostalAddress(user_id=user.id, **cleaned)
            session.add(row)
        else:
            for key, value in cleaned.items():
                setattr(row, key, value)
    return row


def address_lines(address: PostalAddress | None) -> list[str]:
    if address is None:
        return []
    city = " ".join(part for part in (address.postcode, address.city) if part)
    return [line for line in (address.recipient, address.street, city, address.country) if line]


def membership_of(session: Session, merchant: Merchant, membership_id: int) -> Membership:
    membership = session.scalar(
        select(Membership).where(Membership.id == membership_id, Membership.merchant_id == merchant.id)
    )
    if membership is None:
        raise NotFound(_("No such customer."))
    return membership


# --------------------------------------------------------------------------- printing


def pending_postal(
    session: Session, merchant: Merchant, start: datetime, end: datetime, limit: int = 1000
) -> list[Letter]:
    return list(
        session.scalars(
            select(Letter)
            .where(
                Letter.merchant_id == merchant.id, Letter.channel == "post", Letter.status == "pending",
                Letter.created_at >= start, Letter.created_at < end,
            )
            .order_by(Letter.created_at, Letter.id)
            .limit(limit)
        )
    )


def mark_printed(session: Session, merchant: Merchant, letter_ids: list[int]) -> int:
    """Only this merchant's pending postal letters move to printed; returns how many did."""
    if not letter_ids:
        return 0
    with unit_of_work(session):
        done = session.execute(
            update(Letter)
            .where(
                Letter.merchant_id == merchant.id, Letter.id.in_(letter_ids[:1000]),
                Letter.channel == "post", Letter.status == "pending",
            )
            .values(status="printed", printed_at=utcnow())
        ).rowcount
    return done


def mark_opened(session: Session, letter_id: int) -> None:
    with unit_of_work(session):
        session.execute(
            update(Letter).where(Letter.id == letter_id, Letter.opened_at.is_(None)).values(opened_at=utcnow())
        )


def letters_of(session: Session, merchant: Merchant, membership_id: int, limit: int = 10) -> list[Letter]:
    return list(
        session.scalars(
            select(Letter)
            .where(Letter.merchant_id == merchant.id, Letter.membership_id == membership_id)
            .order_by(Letter.created_at.desc(), Letter.id.desc())
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class LetterFigures:
    sent: int
    opened: int
    printed: int
    pending_post: int
    scheduled: int
    with_letter: int  # customers who got a letter
    with_letter_repeat: int  # ... and came back after it
    without_letter: int  # customers with a purchase and no letter
    without_letter_repeat: int  # ... with two or more visits

    @staticmethod
    def rate(part: int, whole: int) -> int | None:
        return round(100 * part / whole) if whole else None

    @property
    def repeat_rate_with(self) -> int | None:
        return self.rate(self.with_letter_repeat, self.with_letter)

    @property
    def repeat_rate_without(self) -> int | None:
        return self.rate(self.without_letter_repeat, self.without_letter)


def figures(session: Session, merchant: Merchant) -> LetterFigures:
    """Four aggregate queries, whatever the number of letters or customers."""
    counts = dict(
        session.execute(
            select(Letter.status, func.count(Letter.id)).where(Letter.merchant_id == merchant.id).group_by(Letter.status)
        ).all()
    )
    opened = session.scalar(
        select(func.count(Letter.id)).where(Letter.merchant_id == merchant.id, Letter.opened_at.is_not(None))
    ) or 0
    delivered = ("sent", "printed")
    first_letter = (
        select(Letter.membership_id, func.min(Letter.created_at).label("first_at"))
        .where(Letter.merchant_id == merchant.id, Letter.status.in_(delivered))
        .group_by(Letter.membership_id)
        .subquery()
    )
    came_back = (
        select(Purchase.id)
        .where(
            Purchase.membership_id == first_letter.c.membership_id,
            Purchase.created_at > first_letter.c.first_at,
            Purchase.refunded_at.is_(None),
        )
        .exists()
    )
    with_total, with_repeat = session.execute(
        select(func.count(), func.count(case((came_back, 1)))).select_from(first_letter)
    ).one()
    got_letter = exists().where(Letter.membership_id == Membership.id, Letter.status.in_(delivered))
    without_total, without_repeat = session.execute(
        select(func.count(Membership.id), func.count(case((Membership.visits >= 2, 1)))).where(
            and_(Membership.merchant_id == merchant.id, Membership.visits >= 1, ~got_letter)
        )
    ).one()
    return LetterFigures(
        sent=counts.get("sent", 0), opened=opened, printed=counts.get("printed", 0),
        pending_post=counts.get("pending", 0), scheduled=counts.get("scheduled", 0),
        with_letter=with_total, with_letter_repeat=with_repeat,
        without_letter=without_total, without_letter_repeat=without_repeat,
    )


# --------------------------------------------------------------------------- erasure


def forget_customer(session: Session, user_id: int) -> None:
    """Erasure: the address goes, pending letters are cancelled, letter texts lose personal data."""
    session.execute(PostalAddress.__table__.delete().where(PostalAddress.user_id == user_id))
    memberships = select(Membership.id).where(Membership.user_id == user_id).scalar_subquery()
    session.execute(
        update(Letter)
        .where(Letter.membership_id.in_(memberships), Letter.status.in_(("scheduled", "pending")))
        .values(status="cancelled")
    )
    session.execute(update(Letter).where(Letter.membership_id.in_(memberships)).values(context={}))
