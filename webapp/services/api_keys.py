"""API keys: created by the owner (secret shown once), stored as a keyed hash, revoked at once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.errors import NotFound, ValidationFailed
from webapp.models import ApiKey, Merchant
from webapp.models.base import utcnow
from webapp.models.integrations import API_KEY_SCOPES
from webapp.services.codes import keyed_hash
from webapp.unit_of_work import unit_of_work

SECRET_PREFIX = "nbly_"  # noqa: S105 - a public marker, not a secret
MAX_NAME_LENGTH = 80
# Writing "last used" on every call would make each read a write; once a minute is enough to see.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # shown to the owner once, never stored


def hash_secret(secret: str, hash_key: str | bytes) -> str:
    """The stored form of a secret: HMAC-SHA256 keyed with the app's code hash key."""
    return keyed_hash(secret, hash_key)


def create_key(
    session: Session, merchant: Merchant, *, name: str, scope: str, created_by_id: int | None,
    hash_key: str | bytes,
) -> CreatedKey:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Give the key a name, for example the till it is for."), field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed(_("The name is too long (at most 80 characters)."), field="name")
    if scope not in API_KEY_SCOPES:
        raise ValidationFailed(_("Choose what the key may do."), field="scope")
    # 256 random bits: the key is the whole credential, and only its hash is kept.
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        merchant_id=merchant.id, name=name, scope=scope, prefix=secret[: len(SECRET_PREFIX) + 6],
        secret_hash=hash_secret(secret, hash_key), created_by_id=created_by_id, created_at=utcnow(),
    )
    with unit_of_work(session):
        session.add(key)
    return CreatedKey(key=key, secret=secret)


def list_keys(session: Session, merchant: Merchant) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey)
            .where(ApiKey.merchant_id == merchant.id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    )


def revoke_key(session: Session, merchant: Merchant, key_id: int) -> ApiKey:
    """Revoke a key of this merchant; the next call made with it is refused."""
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.merchant_id == merchant.id))
    if key is None:
        raise NotFound(_("No such key here."))
    if key.revoked_at is None:
        with unit_of_work(session):
            key.revoked_at = utcnow()
    return key


def authenticate(session: Session, secret: str, hash_key: str | bytes) -> ApiKey | None:
    """The live key whose secret this is, with its merchant, or ``None``; notes the last use."""
    if not secret or not secret.startswith(SECRET_PREFIX) or len(secret) > 100:
        return None
    key = session.scalar(
        select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret, hash_key), ApiKey.revoked_at.is_(None))
    )
    if key is None:
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        with unit_of_work(session) as unit:
            session.execute(
                update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
            unit.keep_all_loaded()  # the request goes on with the key and its merchant as loaded
        key.last_used_at = now
    return key
