"""Sending letters: after a purchase, on schedule, and periodically; composing e-mails and PDFs.

Every send follows one order: the log row is written (or claimed by a conditional UPDATE), and
only the caller whose write went through queues the e-mail, in the same unit of work. The e-mail
is an outbox row, so the log row, the e-mail and (in the worker) the completion of the message
that asked for it commit together: a retried or duplicated job finds the row taken and sends
nothing, and a process that dies before the commit leaves nothing behind to retry from.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from plugins.letters import compose, pdf, services
from plugins.letters.models import Letter
from plugins.letters.services import PlannedLetter
from webapp.plugin_api import (
    MARKETING,
    Membership,
    Merchant,
    MerchantPhoto,
    Purchase,
    db,
    has_consent,
    hooks_for,
    is_enabled,
    money,
    outbox,
    plugin_settings,
    points,
    public_url,
    recipient_locale,
    send_email,
    sorted_by_order,
    unit_of_work,
    utcnow,
)

log = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "letters-unsubscribe"
OPEN_SALT = "letters-open"
MAX_LOGO_BYTES = 2 * 1024 * 1024
PERIODIC_GRACE = timedelta(minutes=15)


# --------------------------------------------------------------------------- links


def _serializer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def unsubscribe_token(user_id: int, merchant_id: int) -> str:
    return _serializer(UNSUBSCRIBE_SALT).dumps([user_id, merchant_id])


def read_unsubscribe_token(token: str) -> tuple[int, int] | None:
    try:
        user_id, merchant_id = _serializer(UNSUBSCRIBE_SALT).loads(token)
    except (BadSignature, TypeError, ValueError):
        return None
    if not isinstance(user_id, int) or not isinstance(merchant_id, int):
        return None
    return user_id, merchant_id


def open_token(letter_id: int) -> str:
    return _serializer(OPEN_SALT).dumps(letter_id)


def read_open_token(token: str) -> int | None:
    try:
        letter_id = _serializer(OPEN_SALT).loads(token)
    except BadSignature:
        return None
    return letter_id if isinstance(letter_id, int) else None


def wallet_url(membership_id: int) -> str:
    return public_url("wallet.card", membership_id=membership_id)


# --------------------------------------------------------------------------- placeholder values


def locale_for(merchant: Merchant, membership: Membership) -> str:
    """The customer's language, else the network's default (letters follow their reader)."""
    return recipient_locale(membership.user, merchant.network)


def customer_facts(merchant: Merchant, membership: Membership, purchase: Purchase | None) -> dict[str, str]:
    """Facts other enabled plugins offer (a status level, a certificate received), by key."""
    facts: dict[str, list[str]] = {}
    for fact in sorted_by_order(
        hooks_for(merchant).neighbourly_collect_customer_facts(
            merchant=merchant, membership=membership, purchase=purchase
        )
    ):
        facts.setdefault(fact.key, []).append(fact.value)
    return {key: "; ".join(values) for key, values in facts.items()}


def letter_context(merchant: Merchant, membership: Membership, purchase: Purchase | None) -> dict:
    """Plain values for the placeholders, formatted in the customer's language."""
    locale = locale_for(merchant, membership)
    currency = merchant.network.currency
    with force_locale(locale):
        from flask_babel import format_date

        when = purchase.created_at if purchase else membership.last_purchase_at
        facts = customer_facts(merchant, membership, purchase)
        return {
            "first_name": membership.user.first_name,
            "merchant": merchant.name,
            "amount": money(purchase.amount, currency, locale) if purchase else "",
            "date": format_date(when, "long") if when else "",
            "points_earned": points(purchase.points_earned, locale) if purchase else "0",
            "points_balance": points(membership.balance, locale),
            "status": facts.get("status", ""),
            "certificate": facts.get("certificate", ""),
            "bonus_code": "",
            "bonus_partner": "",
            "wallet_url": wallet_url(membership.id),
            "locale": locale,
        }


def sample_context(merchant: Merchant) -> dict:
    """Made-up values for the live preview, written the way the network's customers read them."""
    from datetime import date

    from babel.dates import format_date

    languages = current_app.config["LANGUAGES"]
    locale = merchant.network.default_locale
    if locale not in languages:
        locale = current_app.config["BABEL_DEFAULT_LOCALE"]
    return {
        "first_name": SAMPLE_NAMES.get(locale, "Aigerim"),
        "merchant": merchant.name,
        "amount": money(450000, merchant.network.currency, locale),
        "date": format_date(date(2027, 3, 12), "long", locale=locale),
        "points_earned": points(225, locale),
        "points_balance": points(1240, locale),
        "status": "Gold",
        "certificate": money(100000, merchant.network.currency, locale),
        "bonus_code": "CINEMA-7F3K",
        "bonus_partner": "Kino Star",
        "wallet_url": public_url("wallet.index"),
        "locale": locale,
    }


SAMPLE_NAMES = {"en": "Aigerim", "ru": "Айгерим", "kk": "Айгерім", "bg": "Мария"}


# --------------------------------------------------------------------------- after a purchase


def on_purchase_committed(merchant: Merchant, purchase: Purchase) -> list[Letter]:
    """Log the letters of one purchase once, send the thank-you, schedule the reassurance."""
    session = db.session
    membership = purchase.membership
    user = membership.user
    if purchase.refunded_at or user.erased_at or membership.left_at:
        return []
    if not has_consent(session, user.id, merchant.id, MARKETING):
        return []
    settings = plugin_settings(merchant, "letters")
    now = utcnow()
    thanks = services.template_for(session, merchant, "thanks")
    planned = []
    if settings["thanks_email"] and user.email:
        planned.append(PlannedLetter("thanks", "email", "sent", now, thanks.bonus_pool))
    if settings["reassurance_email"] and user.email:
        delay = timedelta(hours=settings["reassurance_hours"])
        reassurance = services.template_for(session, merchant, "reassurance")
        planned.append(PlannedLetter("reassurance", "email", "scheduled", now + delay, reassurance.bonus_pool))
    if settings["postal_letters"] and services.address_of(session, user.id) is not None:
        planned.append(PlannedLetter("thanks", "post", "pending", now, thanks.bonus_pool))
    if not planned:
        return []
    context = letter_context(merchant, membership, purchase)
    letters = services.record_letters(
        session, merchant, membership, purchase, planned, context, dedupe_prefix=f"purchase:{purchase.id}"
    )
    for letter in letters:
        if letter.channel != "email":
            continue
        if letter.status == "sent":
            send_letter_email(letter, merchant, membership)
        elif letter.status == "scheduled":
            delay = max(0.0, (letter.due_at - utcnow()).total_seconds())
            from plugins.letters.tasks import SCHEDULED_LETTER

            outbox.add(
                session, SCHEDULED_LETTER, {"letter_id": letter.id}, merchant_id=merchant.id, delay=delay
            )
    return letters


def send_scheduled(letter_id: int) -> bool:
    """Send a scheduled e-mail if it is still due and allowed; ``True`` only for the one sender.

    The claim and the e-mail are one unit of work (the caller's, when there is one)."""
    session = db.session
    with unit_of_work(session):
        letter = session.get(Letter, letter_id)
        if letter is None or letter.status != "scheduled":
            return False
        merchant = session.get(Merchant, letter.merchant_id)
        membership = session.get(Membership, letter.membership_id)
        user = membership.user
        if (
            not is_enabled(merchant, "letters") or user.erased_at or membership.left_at or not user.email
            or not has_consent(session, user.id, merchant.id, MARKETING)
        ):
            services.cancel_scheduled(session, letter.id)
            return False
        if not services.claim_scheduled(session, letter.id):
            return False
        session.refresh(letter)
        send_letter_email(letter, merchant, membership)
    return True


def run_periodic(now: datetime | None = None) -> int:
    """Send overdue scheduled letters and queue "we miss you" letters; returns letters sent."""
    session = db.session
    now = now or utcnow()
    sent = 0
    for letter_id in services.due_letter_ids(session, now - PERIODIC_GRACE):
        sent += send_scheduled(letter_id)  # each letter its own unit of work in the sweep's job
    for merchant in services.merchants_with_letters(session):
        days = plugin_settings(merchant, "letters")["winback_days"]
        if not days:
            continue
        for membership in services.winback_candidates(session, merchant, now, days):
            user = membership.user
            if user.erased_at or not user.email or not has_consent(session, user.id, merchant.id, MARKETING):
                continue
            template = services.template_for(session, merchant, "winback")
            stamp = membership.last_purchase_at.strftime("%Y%m%d%H%M%S")
            with unit_of_work(session):  # the letter's row and its e-mail, per customer
                letters = services.record_letters(
                    session, merchant, membership, None,
                    [PlannedLetter("winback", "email", "scheduled", now, template.bonus_pool)],
                    letter_context(merchant, membership, None), dedupe_prefix=f"winback:{membership.id}:{stamp}",
                )
                for letter in letters:
                    sent += send_scheduled(letter.id)
    return sent


# --------------------------------------------------------------------------- e-mail


def _values(letter: Letter) -> dict:
    return {key: value for key, value in (letter.context or {}).items() if key in compose.PLACEHOLDERS}


def compose_email(letter: Letter, merchant: Merchant, membership: Membership) -> dict:
    """Subject, text, HTML and headers of a letter's e-mail."""
    locale = (letter.context or {}).get("locale") or locale_for(merchant, membership)
    template = services.template_for(db.session, merchant, letter.kind, locale)
    rendered = compose.render_letter(template.subject, template.body, _values(letter))
    unsubscribe = public_url("letters.unsubscribe", token=unsubscribe_token(membership.user_id, merchant.id))
    pixel = None
    if plugin_settings(merchant, "letters")["open_pixel"]:
        pixel = public_url("letters.opened", token=open_token(letter.id))
    with force_locale(locale):
        html = render_template(
            "letters/email.html", rendered=rendered, merchant=merchant, unsubscribe_url=unsubscribe,
            pixel_url=pixel, locale=locale,
        )
        footer = _("You get this letter because you agreed to messages from %(merchant)s.", merchant=merchant.name)
        stop = _("Unsubscribe: %(url)s", url=unsubscribe)
    text = f"{rendered.text}\n\n-- \n{footer}\n{stop}\n"
    return {
        "subject": rendered.subject,
        "text": text,
        "html": html,
        "headers": {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }


def send_letter_email(letter: Letter, merchant: Merchant, membership: Membership) -> None:
    message = compose_email(letter, merchant, membership)
    send_email(
        to=membership.user.email, subject=message["subject"], text=message["text"], html=message["html"],
        sender_name=merchant.name, headers=message["headers"],
    )


# --------------------------------------------------------------------------- printing


def logo_data_url(merchant: Merchant) -> str | None:
    """The merchant's first photo, embedded: the PDF renderer may not read files itself."""
    photo = db.session.scalar(
        select(MerchantPhoto)
        .where(MerchantPhoto.merchant_id == merchant.id)
        .order_by(MerchantPhoto.position, MerchantPhoto.id)
        .limit(1)
    )
    if photo is None:
        return None
    path = Path(current_app.config["UPLOAD_FOLDER"]) / photo.filename
    try:
        if path.stat().st_size > MAX_LOGO_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    mime = "image/webp" if photo.filename.endswith(".webp") else "image/jpeg"
    return pdf.data_url(data, mime)


def qr_png(data: str) -> bytes:
    import io

    import segno

    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return buffer.getvalue()


QR_SCALE = 4
QR_BORDER = 4


def printable(letter_kind: str, context: dict, address: list[str], merchant: Merchant) -> dict:
    """Plain data for one printed letter (no ORM objects go into the PDF template)."""
    locale = context.get("locale") or merchant.network.default_locale
    template = services.template_for(db.session, merchant, letter_kind, locale)
    values = {key: value for key, value in context.items() if key in compose.PLACEHOLDERS}
    rendered = compose.render_letter(template.subject, template.body, values)
    wallet = context.get("wallet_url") or ""
    return {
        "subject": rendered.subject,
        "body": rendered.html,
        "address": address,
        "qr": pdf.data_url(qr_png(wallet), "image/png") if wallet else None,
        "wallet_url": wallet,
        "locale": locale,
    }


def letters_html(merchant: Merchant, letters: list[dict]) -> str:
    return render_template(
        "letters/print.html", letters=letters, merchant_name=merchant.name,
        merchant_address=merchant.address, merchant_phone=merchant.phone,
        logo=logo_data_url(merchant), stylesheet=next(iter(pdf.STATIC_FILES)),
    )


def postal_pdf(merchant: Merchant, letters: list[Letter]) -> bytes:
    """One PDF of many postal letters, each on its own A4 page(s)."""
    pages = []
    for letter in letters:
        membership = db.session.get(Membership, letter.membership_id)
        address = services.address_lines(services.address_of(db.session, membership.user_id))
        pages.append(printable(letter.kind, letter.context or {}, address, merchant))
    return pdf.render_pdf(letters_html(merchant, pages), timeout=pdf.time_limit(len(pages)))


def single_letter_pdf(merchant: Merchant, membership: Membership) -> bytes:
    """The customer's latest letter, or a thank-you for their latest purchase, as a PDF."""
    latest = services.letters_of(db.session, merchant, membership.id, limit=1)
    if latest and latest[0].context:
        kind, context = latest[0].kind, latest[0].context
    else:
        purchase = db.session.scalar(
            select(Purchase)
            .where(Purchase.membership_id == membership.id, Purchase.merchant_id == merchant.id)
            .order_by(Purchase.created_at.desc(), Purchase.id.desc())
            .limit(1)
        )
        kind = "thanks" if purchase else "winback"
        context = letter_context(merchant, membership, purchase)
    address = services.address_lines(services.address_of(db.session, membership.user_id))
    page = printable(kind, context, address, merchant)
    return pdf.render_pdf(letters_html(merchant, [page]))


def preview(merchant: Merchant, kind: str, subject: str, body: str, bonus_pool: str = "") -> compose.Rendered:
    """The letter with made-up values; when the chosen pool of partner codes has none left, the
    code and partner are empty, as in a real letter, so the preview shows what is left out."""
    context = sample_context(merchant)
    pools = {summary.pool: summary for summary in services.pool_summaries(db.session, merchant)}
    pool = pools.get(bonus_pool) if bonus_pool else None
    if not bonus_pool or pool is None or pool.used >= pool.total:
        context.update(bonus_code="", bonus_partner="")
    return compose.render_letter(subject, body, context)

