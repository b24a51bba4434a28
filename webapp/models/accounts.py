"""People (customers, staff, operators), their revocable sessions, reset tokens and consents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class User(db.Model):
    """Anyone who signs in. ``card_code`` identifies a customer at any till of the network."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str | None] = mapped_column(String(32), unique=True)
    locale: Mapped[str | None] = mapped_column(String(10))
    card_code: Mapped[str] = mapped_column(String(16), unique=True)
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Optional, given with its own consent (the year too is optional): birthday bonuses.
    birth_day: Mapped[int | None] = mapped_column(SmallInteger)
    birth_month: Mapped[int | None] = mapped_column(SmallInteger)
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        CheckConstraint(
            "(birth_day IS NULL AND birth_month IS NULL AND birth_year IS NULL) OR "
            "(birth_day BETWEEN 1 AND 31 AND birth_month BETWEEN 1 AND 12)",
            name="birthday_valid",
        ),
        Index("ix_users_birthday", "birth_month", "birth_day"),
    )
    # Set for a person brought in by a merchant's import (no password yet); signing up with the
    # same phone number takes the account over, old points included.
    imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Flask-Login needs these; ``get_id`` is set per session by the auth service.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.erased_at is None

    @property
    def first_name(self) -> str:
        return (self.name or "").split(" ")[0]

    def get_id(self) -> str:  # pragma: no cover - replaced by the session-bound id
        raise RuntimeError("users are signed in through webapp.services.accounts.start_session")


class UserSession(db.Model):
    """A server-side record of one signed-in browser; revoking it ends that browser's session."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(255), default="")


class PasswordResetToken(db.Model):
    """A single-use password reset link; only the hash of its token is stored."""

    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsentRecord(db.Model):
    """Append-only: each grant or withdrawal of a consent, with the text version shown."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    purpose: Mapped[str] = mapped_column(String(40))  # "data_processing", "marketing"
    granted: Mapped[bool] = mapped_column(Boolean)
    text_version: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_consent_records_lookup", "user_id", "merchant_id", "purpose"),)
