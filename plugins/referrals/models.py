"""The referrals tables: personal codes, link opens, referral links, rewards and monthly caps."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from webapp.plugin_api import UTCDateTime, db, utcnow

LINK_STATUSES = ("active", "held", "rejected")


class ReferralCode(db.Model):
    """A member's personal referral code at one merchant."""

    __tablename__ = "referrals_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), unique=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LinkOpen(db.Model):
    """Someone opened a referral link (top of the funnel; the address feeds the anti-fraud rule)."""

    __tablename__ = "referrals_opens"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    code: Mapped[str] = mapped_column(String(24))
    ip: Mapped[str | None] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_referrals_opens_merchant_opened", "merchant_id", "opened_at"),)


class ReferralLink(db.Model):
    """A friend who joined through a code: linked once, at joining (UNIQUE on the friend)."""

    __tablename__ = "referrals_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    referrer_membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), index=True)
    referee_membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="active")
    ip: Mapped[str | None] = mapped_column(String(64))
    # The purchase that paid the friend's sign-up bonus; a guarded UPDATE sets it once.
    signup_bonus_purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("status IN ('active', 'held', 'rejected')", name="status_known"),
        CheckConstraint("referrer_membership_id <> referee_membership_id", name="not_self"),
        Index("ix_referrals_links_merchant_ip_created", "merchant_id", "ip", "created_at"),
    )


class Reward(db.Model):
    """One reward: exactly one per (purchase, beneficiary, depth); depth 0 is the sign-up bonus."""

    __tablename__ = "referrals_rewards"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchases.id"))
    beneficiary_membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), index=True)
    depth: Mapped[int] = mapped_column()
    amount: Mapped[int] = mapped_column(BigInteger, default=0)  # points actually paid (after the cap)
    month: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("purchase_id", "beneficiary_membership_id", "depth"),
        CheckConstraint("depth >= 0 AND depth <= 3", name="depth_at_most_3"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )


class MonthlyTotal(db.Model):
    """Points a beneficiary earned from referrals in a month; the cap is checked under its lock."""

    __tablename__ = "referrals_monthly_totals"

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    month: Mapped[date] = mapped_column(Date)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    # What the latest reservation granted: computed in the same upsert as ``total``, from the
    # row's old value, so the cap needs no read-then-write.
    last_granted: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        UniqueConstraint("membership_id", "month"),
        CheckConstraint("total >= 0", name="total_not_negative"),
    )
