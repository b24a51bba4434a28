"""The group_deals tables: deals with their price tiers, pledges, vouchers, ideas and votes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.plugin_api import Merchant, UTCDateTime, db, utcnow

MAX_TITLE = 120
MAX_DESCRIPTION = 2000
MAX_IDEA = 500
MAX_ANSWER = 500
DEAL_STATUSES = ("draft", "open", "closed", "cancelled")
PLEDGE_KINDS = ("current", "best")
# "won": part of a deal that happened (a voucher was issued); "released": the deal closed
# without it (best-price-only pledge above the lowest price, or the deal was cancelled).
PLEDGE_STATUSES = ("active", "left", "won", "released")
VOUCHER_STATUSES = ("issued", "redeemed", "expired")
IDEA_STATUSES = ("open", "answered", "dealt")


class Deal(db.Model):
    """A collective purchase: the more people join before the deadline, the lower the price."""

    __tablename__ = "group_deals_deals"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    title: Mapped[str] = mapped_column(String(MAX_TITLE))
    description: Mapped[str] = mapped_column(Text, default="")
    photo_filename: Mapped[str | None] = mapped_column(String(64), unique=True)
    regular_price: Mapped[int] = mapped_column(BigInteger)  # minor units per unit
    max_participants: Mapped[int | None] = mapped_column()
    max_quantity: Mapped[int] = mapped_column(default=1)  # per customer
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    redeem_days: Mapped[int] = mapped_column(default=14)  # the vouchers' window after the deadline
    status: Mapped[str] = mapped_column(String(10), default="draft")
    # People with an active pledge; changed only by guarded UPDATEs (see services.join).
    participants: Mapped[int] = mapped_column(default=0)
    views: Mapped[int] = mapped_column(default=0)
    final_price: Mapped[int | None] = mapped_column(BigInteger)
    idea_id: Mapped[int | None] = mapped_column(ForeignKey("group_deals_ideas.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    merchant: Mapped[Merchant] = relationship()
    tiers: Mapped[list[Tier]] = relationship(order_by="Tier.position", cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("status IN ('draft', 'open', 'closed', 'cancelled')", name="status_known"),
        CheckConstraint("regular_price > 0", name="regular_price_positive"),
        CheckConstraint("max_quantity >= 1", name="max_quantity_positive"),
        CheckConstraint("redeem_days >= 1", name="redeem_days_positive"),
        CheckConstraint("participants >= 0", name="participants_not_negative"),
        CheckConstraint(
            "max_participants IS NULL OR participants <= max_participants", name="within_maximum"
        ),
        Index("ix_group_deals_deals_merchant_status", "merchant_id", "status"),
        Index("ix_group_deals_deals_status_deadline", "status", "deadline"),
    )


class Tier(db.Model):
    """One step of a deal's price: from ``participants`` people on, each unit costs ``price``."""

    __tablename__ = "group_deals_tiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("group_deals_deals.id"))
    position: Mapped[int] = mapped_column()  # 1 is the minimum tier: below it there is no deal
    participants: Mapped[int] = mapped_column()
    price: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("deal_id", "position"),
        CheckConstraint("participants >= 1", name="participants_positive"),
        CheckConstraint("price > 0", name="price_positive"),
    )


class Pledge(db.Model):
    """One customer in one deal (a single row per person: leaving and joining again reuse it)."""

    __tablename__ = "group_deals_pledges"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("group_deals_deals.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    quantity: Mapped[int] = mapped_column(default=1)
    kind: Mapped[str] = mapped_column(String(10), default="current")
    status: Mapped[str] = mapped_column(String(10), default="active")
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("deal_id", "user_id"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("kind IN ('current', 'best')", name="kind_known"),
        CheckConstraint("status IN ('active', 'left', 'won', 'released')", name="status_known"),
        Index("ix_group_deals_pledges_user", "user_id"),
    )


class Voucher(db.Model):
    """The right to buy a deal's units at its final price, once, within the redemption window.

    The code is never stored: it is derived from ``nonce`` with the app's secret for the holder's
    view, and found at the till by its keyed hash.
    """

    __tablename__ = "group_deals_vouchers"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("group_deals_deals.id"))
    pledge_id: Mapped[int] = mapped_column(ForeignKey("group_deals_pledges.id"), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    nonce: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    quantity: Mapped[int] = mapped_column()
    regular_price: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="issued")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"), index=True)

    deal: Mapped[Deal] = relationship()

    __table_args__ = (
        CheckConstraint("status IN ('issued', 'redeemed', 'expired')", name="status_known"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("price > 0 AND price < regular_price", name="price_below_regular"),
        Index("ix_group_deals_vouchers_user_merchant", "user_id", "merchant_id"),
    )


class Idea(db.Model):
    """A customer's proposal of what the merchant could sell next; others vote for it."""

    __tablename__ = "group_deals_ideas"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    # Emptied when the proposer's account is erased; the idea stays for the others who voted.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    membership_id: Mapped[int | None] = mapped_column(
        ForeignKey("memberships.id", ondelete="SET NULL")
    )
    text: Mapped[str] = mapped_column(String(MAX_IDEA))
    votes: Mapped[int] = mapped_column(default=0)  # kept by guarded UPDATEs with the vote rows
    status: Mapped[str] = mapped_column(String(10), default="open")
    answer: Mapped[str] = mapped_column(String(MAX_ANSWER), default="")
    reward_points: Mapped[int] = mapped_column(BigInteger, default=0)
    rewarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("status IN ('open', 'answered', 'dealt')", name="status_known"),
        CheckConstraint("votes >= 0", name="votes_not_negative"),
        CheckConstraint("reward_points >= 0", name="reward_not_negative"),
        Index("ix_group_deals_ideas_merchant_votes", "merchant_id", "votes"),
    )


class Vote(db.Model):
    """One person's vote for one idea (at most one; taking it back deletes the row)."""

    __tablename__ = "group_deals_votes"

    id: Mapped[int] = mapped_column(primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("group_deals_ideas.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("idea_id", "user_id"),)
