"""The letters plugin's tables: templates, the sent-letter log, partner bonus codes, postal addresses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.plugin_api import UTCDateTime, db, utcnow

KINDS = ("thanks", "reassurance", "winback")
CHANNELS = ("email", "post")
# scheduled -> sent | cancelled (e-mail); pending -> printed | cancelled (post)
STATUSES = ("scheduled", "sent", "cancelled", "pending", "printed")
MAX_SUBJECT = 200
MAX_BODY = 5000


class LetterTemplate(db.Model):
    """A merchant's own wording of one kind of letter; without a row the defaults apply."""

    __tablename__ = "letters_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(MAX_SUBJECT))
    body: Mapped[str] = mapped_column(Text)  # plain text with {placeholders}
    bonus_pool: Mapped[str] = mapped_column(String(60), default="")  # "" = no enclosed code
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("merchant_id", "kind"),
        CheckConstraint("kind IN ('thanks', 'reassurance', 'winback')", name="kind_known"),
        CheckConstraint(f"length(body) <= {MAX_BODY}", name="body_length"),
    )


class Letter(db.Model):
    """One letter to one customer. ``dedupe_key`` is UNIQUE per merchant: whoever inserts it sends.

    ``context`` is the plain data the placeholders were filled from (no ORM objects), so a postal
    letter printed a week later says what it said on the day of the purchase.
    """

    __tablename__ = "letters_sent"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10), default="email")
    status: Mapped[str] = mapped_column(String(20))
    dedupe_key: Mapped[str] = mapped_column(String(120))
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("merchant_id", "dedupe_key"),
        CheckConstraint("kind IN ('thanks', 'reassurance', 'winback')", name="kind_known"),
        CheckConstraint("channel IN ('email', 'post')", name="channel_known"),
        CheckConstraint(
            "status IN ('scheduled', 'sent', 'cancelled', 'pending', 'printed')", name="status_known"
        ),
        Index("ix_letters_sent_merchant_status_due", "merchant_id", "status", "due_at"),
        Index("ix_letters_sent_membership", "membership_id"),
    )


class BonusCode(db.Model):
    """A partner code (cinema ticket, coffee) enclosed in at most one letter."""

    __tablename__ = "letters_bonus_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    pool: Mapped[str] = mapped_column(String(60))
    partner: Mapped[str] = mapped_column(String(120), default="")
    code: Mapped[str] = mapped_column(String(80))
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters_sent.id"), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("merchant_id", "pool", "code"),
        Index("ix_letters_bonus_codes_free", "merchant_id", "pool", "used_at"),
    )


class PostalAddress(db.Model):
    """A customer's postal address for printed letters (the core keeps no address)."""

    __tablename__ = "letters_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    recipient: Mapped[str] = mapped_column(String(120))
    street: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(120))
    postcode: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(80), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
