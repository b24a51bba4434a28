"""Webhooks: endpoints the owner registers, deliveries written with their event, signed attempts.

Deliveries follow the Standard Webhooks specification: a JSON body ``{"type", "timestamp",
"data"}`` and the headers ``webhook-id`` (the same on every attempt of a delivery),
``webhook-timestamp`` (the attempt's Unix time) and ``webhook-signature`` (``v1,`` + base64 of
HMAC-SHA256 over ``id.timestamp.body`` with the endpoint's ``whsec_`` secret).

A delivery row and its outbox message are written inside the event's own transaction
(``neighbourly_event_recorded``), so an event that commits is delivered even when the queue is
down, and one that rolls back never is. Each attempt is one outbox message: it sends once, logs the
attempt and, on failure, writes the next attempt's message with an exponential delay, all in the
transaction that completes the message. Retries go on until the delivery is a day old; an endpoint
failing for a day is disabled and its owners are told by e-mail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from webapp import outbox, safe_http
from webapp.contracts import EventType
from webapp.errors import NotFound, ValidationFailed
from webapp.models import Merchant, StaffRole, User
from webapp.models.base import utcnow
from webapp.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webapp.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks marker, not a secret
SECRET_BYTES = 32
MAX_ENDPOINTS = 20
OUTBOX_KIND = "webhook"
FIRST_RETRY_SECONDS = 15
MAX_RETRY_SECONDS = 6 * 3600
USER_AGENT = "Neighbourly-Webhooks/1"
KEEP_LOG = timedelta(days=30)  # deliveries and their attempts are kept this long


# --------------------------------------------------------------------------- events


def event_types(merchant: Merchant) -> list[EventType]:
    """Events the merchant's owner can subscribe to: the core's and those of enabled plugins."""
    from webapp.plugins import hooks_for, sorted_by_order

    found = sorted_by_order(hooks_for(merchant).neighbourly_collect_event_types(merchant=merchant))
    unique: dict[str, EventType] = {}
    for item in found:
        unique.setdefault(item.name, item)
    return list(unique.values())


# --------------------------------------------------------------------------- secrets


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _fernet() -> Fernet:
    # Derived from SECRET_KEY for this one purpose: the database alone cannot reveal a secret.
    key = hmac.new(
        str(current_app.config["SECRET_KEY"]).encode(), b"neighbourly:webhook-secrets", hashlib.sha256
    ).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal_secret(secret: str) -> str:
    """The stored form of a signing secret: encrypted and authenticated (Fernet)."""
    return _fernet().encrypt(secret.encode()).decode()


def unseal_secret(sealed: str) -> str:
    return _fernet().decrypt(sealed.encode()).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body`` with the decoded secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --------------------------------------------------------------------------- the owner's endpoints


@dataclass(frozen=True)
class WithSecret:
    endpoint: WebhookEndpoint
    secret: str  # shown to the owner once; stored only sealed


def _allow_loopback() -> bool:
    return bool(current_app.config.get("WEBHOOKS_ALLOW_LOOPBACK"))


def clean_url(url: str) -> str:
    """The URL, stripped, if it may receive events here; ``ValidationFailed`` (field ``url``) if not."""
    try:
        safe_http.check_url(url, _allow_loopback())
    except safe_http.UnsafeUrl as refused:
        raise ValidationFailed(str(refused), field="url") from None
    return url.strip()


def clean_events(merchant: Merchant, chosen: list[str]) -> list[str]:
    known = [item.name for item in event_types(merchant)]
    picked = [name for name in known if name in set(chosen)]
    if not picked or len(picked) != len(set(chosen)):
        raise ValidationFailed(_("Choose at least one of the offered events."), field="events")
    return picked


def create_endpoint(
    session: Session, merchant: Merchant, *, url: str, events: list[str], created_by_id: int | None,
) -> WithSecret:
    events = clean_events(merchant, events)
    url = clean_url(url)
    count = len(list_endpoints(session, merchant))
    if count >= MAX_ENDPOINTS:
        raise ValidationFailed(_("A shop can have at most %(count)s endpoints.", count=MAX_ENDPOINTS),
                               field="url")
    secret = new_secret()
    endpoint = WebhookEndpoint(
        merchant_id=merchant.id, url=url, events=events, secret_sealed=seal_secret(secret),
        enabled=True, created_by_id=created_by_id, created_at=utcnow(),
    )
    with unit_of_work(session):
        session.add(endpoint)
        _refresh_subscriptions(session, merchant.id)
    return WithSecret(endpoint, secret)


def _refresh_subscriptions(session: Session, merchant_id: int) -> None:
    """Keep ``Merchant.webhook_events``: the events the merchant's enabled endpoints want."""
    session.flush()
    wanted: set[str] = set()
    for events in session.scalars(select(WebhookEndpoint.events).where(
        WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.enabled.is_(True)
    )):
        wanted.update(events or ())
    session.execute(update(Merchant).where(Merchant.id == merchant_id).values(webhook_events=sorted(wanted)))
    merchant = session.get(Merchant, merchant_id)
    if merchant is not None:
        session.expire(merchant, ["webhook_events"])


def list_endpoints(session: Session, merchant: Merchant) -> list[WebhookEndpoint]:
    return list(session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.merchant_id == merchant.id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    ))


def get_endpoint(session: Session, merchant: Merchant, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.merchant_id == merchant.id
    ))
    if endpoint is None:
        raise NotFound(_("No such endpoint here."))
    return endpoint


def rotate_secret(session: Session, merchant: Merchant, endpoint_id: int) -> WithSecret:
    """A new secret signs from now on; the old one also signs for ``WEBHOOKS_OLD_SECRET_HOURS``."""
    endpoint = get_endpoint(session, merchant, endpoint_id)
    secret = new_secret()
    hours = float(current_app.config.get("WEBHOOKS_OLD_SECRET_HOURS", 24))
    with unit_of_work(session):
        endpoint.previous_secret_sealed = endpoint.secret_sealed if hours > 0 else None
        endpoint.previous_secret_until = utcnow() + timedelta(hours=hours) if hours > 0 else None
        endpoint.secret_sealed = seal_secret(secret)
    return WithSecret(endpoint, secret)


def set_enabled(session: Session, merchant: Merchant, endpoint_id: int, enabled: bool) -> WebhookEndpoint:
    endpoint = get_endpoint(session, merchant, endpoint_id)
    with unit_of_work(session):
        endpoint.enabled = enabled
        if enabled:
            endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
        elif endpoint.disabled_at is None:
            endpoint.disabled_at, endpoint.disabled_reason = utcnow(), "owner"
        _refresh_subscriptions(session, merchant.id)
    return endpoint


def delete_endpoint(session: Session, merchant: Merchant, endpoint_id: int) -> None:
    """Delete the endpoint with its deliveries and attempts (the foreign keys cascade)."""
    endpoint = get_endpoint(session, merchant, endpoint_id)
    with unit_of_work(session):
        session.execute(delete(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint.id))
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
        session.delete(endpoint)
        _refresh_subscriptions(session, merchant.id)


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def recent_deliveries(session: Session, endpoint: WebhookEndpoint, limit: int = 30) -> list[DeliveryView]:
    deliveries = list(session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit)
    ))
    attempts: dict[int, list[WebhookAttempt]] = {delivery.id: [] for delivery in deliveries}
    if deliveries:
        for attempt in session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(attempts))
            .order_by(WebhookAttempt.attempted_at.desc(), WebhookAttempt.id.desc())
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [DeliveryView(delivery, attempts[delivery.id]) for delivery in deliveries]


def send_again(session: Session, merchant: Merchant, endpoint_id: int, delivery_id: int) -> WebhookDelivery:
    """Queue one more attempt of a delivery now, whatever its state (the owner fixed the receiver)."""
    endpoint = get_endpoint(session, merchant, endpoint_id)
    delivery = session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
    ))
    if delivery is None:
        raise NotFound(_("No such delivery here."))
    with unit_of_work(session):
        outbox.add(session, OUTBOX_KIND, {"delivery_id": delivery.id, "manual": True}, merchant_id=merchant.id)
    return delivery


# --------------------------------------------------------------------------- writing deliveries


def on_event(session: Session, merchant: Merchant, event: str, data: dict[str, Any]) -> int:
    """Inside the event's transaction: one delivery and one outbox message per subscribed endpoint.

    Costs nothing when no enabled endpoint of the merchant wants the event (the merchant row the
    caller loaded says so); otherwise one indexed SELECT. Returns the deliveries written.
    """
    if event not in (merchant.webhook_events or ()):
        return 0
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events)
        .where(WebhookEndpoint.merchant_id == merchant.id, WebhookEndpoint.enabled.is_(True))
    ).all()
    wanted = [row.id for row in endpoints if event in (row.events or ())]
    if not wanted:
        return 0
    now = utcnow()
    body = json.dumps(
        {"type": event, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data},
        separators=(",", ":"), ensure_ascii=False,
    )
    table = WebhookDelivery.__table__
    ids = session.execute(
        insert(table).returning(table.c.id),
        [
            {
                "endpoint_id": endpoint_id, "merchant_id": merchant.id,
                "message_id": "msg_" + secrets.token_urlsafe(18), "event": event, "body": body,
                "status": "pending", "attempts": 0, "created_at": now, "next_attempt_at": now,
            }
            for endpoint_id in wanted
        ],
    ).scalars().all()
    outbox.add_many(
        session, [(OUTBOX_KIND, {"delivery_id": delivery_id}) for delivery_id in ids], merchant_id=merchant.id
    )
    return len(ids)


# --------------------------------------------------------------------------- sending


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 15 s, 1 min, 4 min, 16 min,
    about an hour, four hours, then every six hours (about eleven attempts in a day)."""
    return float(min(FIRST_RETRY_SECONDS * 4 ** (attempts - 1), MAX_RETRY_SECONDS))


def signature_header(endpoint: WebhookEndpoint, message_id: str, timestamp: int, body: bytes,
                     now: datetime) -> str:
    signatures = [sign(unseal_secret(endpoint.secret_sealed), message_id, timestamp, body)]
    if endpoint.previous_secret_sealed and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        signatures.append(sign(unseal_secret(endpoint.previous_secret_sealed), message_id, timestamp, body))
    return " ".join(signatures)


def attempt(session: Session, delivery: WebhookDelivery, manual: bool = False) -> WebhookAttempt:
    """Send the delivery once and log the attempt (no commit)."""
    endpoint = delivery.endpoint
    now = utcnow()
    timestamp = int(now.timestamp())
    body = delivery.body.encode()
    try:
        signature = signature_header(endpoint, delivery.message_id, timestamp, body, now)
    except (InvalidToken, ValueError):
        answer = safe_http.Answer(None, 0, None, _("The signing secret cannot be read: rotate it."))
    else:
        config = current_app.config
        answer = safe_http.post(
            endpoint.url, body,
            {
                "Content-Type": "application/json", "User-Agent": USER_AGENT,
                "webhook-id": delivery.message_id, "webhook-timestamp": str(timestamp),
                "webhook-signature": signature,
            },
            allow_loopback=_allow_loopback(), connect_timeout=float(config["WEBHOOKS_CONNECT_TIMEOUT_S"]),
            read_timeout=float(config["WEBHOOKS_READ_TIMEOUT_S"]),
        )
    record = WebhookAttempt(
        delivery_id=delivery.id, endpoint_id=endpoint.id, attempted_at=now, manual=manual,
        status_code=answer.status, latency_ms=answer.latency_ms,
        response_excerpt=(answer.excerpt or None) and answer.excerpt[:500],
        error=(answer.error or None) and answer.error[:300],
    )
    session.add(record)
    delivery.attempts += 1
    delivery.last_attempt_at = now
    if answer.ok:
        delivery.status, delivery.succeeded_at, delivery.next_attempt_at = "succeeded", now, None
        endpoint.failing_since = None
    else:
        endpoint.failing_since = endpoint.failing_since or now
    return record


def run_delivery(payload: dict[str, Any]) -> None:
    """The outbox handler of one attempt (the runner commits it with the message's completion)."""
    from webapp.extensions import db

    session = db.session
    delivery = session.get(WebhookDelivery, payload["delivery_id"])
    if delivery is None:  # the endpoint was deleted meanwhile
        return
    manual = bool(payload.get("manual"))
    endpoint = delivery.endpoint
    if not manual:
        if delivery.status != "pending":
            return
        if not endpoint.enabled:
            delivery.status, delivery.next_attempt_at = "failed", None
            return
    record = attempt(session, delivery, manual)
    if record.status_code is not None and 200 <= record.status_code < 300:
        return
    now = record.attempted_at
    if not manual and delivery.status == "pending":
        window = timedelta(hours=float(current_app.config["WEBHOOKS_RETRY_HOURS"]))
        if now - delivery.created_at >= window:
            delivery.status, delivery.next_attempt_at = "failed", None
        else:
            delay = retry_delay(delivery.attempts)
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            outbox.add(session, OUTBOX_KIND, {"delivery_id": delivery.id}, merchant_id=delivery.merchant_id,
                       delay=delay)
    failing_for = timedelta(hours=float(current_app.config["WEBHOOKS_DISABLE_AFTER_HOURS"]))
    if endpoint.enabled and endpoint.failing_since and now - endpoint.failing_since >= failing_for:
        _disable_failing(session, endpoint, now)


def _disable_failing(session: Session, endpoint: WebhookEndpoint, now: datetime) -> None:
    """Switch off an endpoint that has failed for a day and e-mail the merchant's owners."""
    from webapp.mail import send_email

    endpoint.enabled, endpoint.disabled_at, endpoint.disabled_reason = False, now, "failing"
    _refresh_subscriptions(session, endpoint.merchant_id)
    merchant = session.get(Merchant, endpoint.merchant_id)
    owners = session.scalars(
        select(User).join(StaffRole, StaffRole.user_id == User.id)
        .where(StaffRole.merchant_id == merchant.id, StaffRole.role == "owner")
    ).all()
    from webapp.web import public_url

    link = public_url("integrations.webhook", merchant_slug=merchant.slug, endpoint_id=endpoint.id)
    log.warning("webhook endpoint %s of merchant %s disabled after a day of failures", endpoint.id, merchant.id)
    for owner in owners:
        if not owner.email or getattr(owner, "erased_at", None) is not None:
            continue
        with force_locale(owner.locale or current_app.config["BABEL_DEFAULT_LOCALE"]):
            send_email(
                owner.email,
                _("Webhooks to %(url)s were switched off", url=endpoint.url),
                _(
                    "Hello,\n\nThe address %(url)s has not accepted the events of %(merchant)s for a "
                    "day, so Neighbourly stopped sending them.\n\nSee what it answered, fix it and "
                    "switch it on again here:\n%(link)s\n",
                    url=endpoint.url, merchant=merchant.name, link=link,
                ),
            )


def purge_old(session: Session, now: datetime | None = None) -> int:
    """Delete deliveries (with their attempts) settled more than 30 days ago; the nightly job."""
    cutoff = (now or utcnow()) - KEEP_LOG
    old = select(WebhookDelivery.id).where(
        WebhookDelivery.created_at < cutoff, WebhookDelivery.status != "pending"
    )
    with unit_of_work(session):
        session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(old)))
        count = session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(old))).rowcount
    return count


outbox.handler(OUTBOX_KIND, max_attempts=5)(run_delivery)
