"""The offers tables: offers sent to a segment, their recipients (control group included) and claims."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from webapp.plugin_api import UTCDateTime, db, utcnow

MAX_TITLE = 120
MAX_MESSAGE = 1000
OFFER_KINDS = ("points", "certificate", "message")


class SegmentOffer(db.Model):
    """Something a merchant sent to a segment of its members, once, at ``sent_at``."""

    __tablename__ = "offers_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    title: Mapped[str] = mapped_column(String(MAX_TITLE))
    message: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(12))
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    # A ``RewardOption.key`` of another plugin (a neighbour's certificate), for kind "certificate".
    reward_key: Mapped[str | None] = mapped_column(String(80))
    reward_label: Mapped[str] = mapped_column(String(200), default="")
    criteria: Mapped[str] = mapped_column(Text)  # the segment's form, as canonical JSON
    segment_hash: Mapped[str] = mapped_column(String(64))
    control_percent: Mapped[int] = mapped_column(default=10)
    recipients: Mapped[int] = mapped_column(default=0)  # treated members, control excluded
    control: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The sending form's one-time key: a double click or a retried POST sends the offer once.
    form_key: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (
        CheckConstraint("kind IN ('points', 'certificate', 'message')", name="kind_known"),
        CheckConstraint("points >= 0", name="points_not_negative"),
        CheckConstraint("control_percent >= 0 AND control_percent <= 50", name="control_share"),
        Index("ix_offers_offers_merchant_sent", "merchant_id", "sent_at"),
        UniqueConstraint("merchant_id", "form_key"),
    )


class OfferRecipient(db.Model):
    """One member in an offer's segment: treated (sees the offer) or in the control group."""

    __tablename__ = "offers_recipients"

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers_offers.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    in_control: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("offer_id", "membership_id"),
        Index("ix_offers_recipients_membership", "membership_id"),
    )


class OfferClaim(db.Model):
    """The one claim of an offer by a member: the unique pair makes the points paid exactly once."""

    __tablename__ = "offers_claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers_offers.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    reward_ref: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("offer_id", "membership_id"),)
