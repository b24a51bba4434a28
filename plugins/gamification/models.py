"""The gamification tables: a merchant's levels, each member's status, and badges (each once)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from webapp.plugin_api import UTCDateTime, db, utcnow

BADGES = ("first_purchase", "tenth_visit", "monthly_streak", "good_neighbour")


class Level(db.Model):
    """One status level of a merchant: position 0 is the entry level (threshold 0)."""

    __tablename__ = "gamification_levels"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    position: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[int] = mapped_column(BigInteger)  # minor units (spend) or a count (visits, friends)
    cashback_bp: Mapped[int] = mapped_column()

    __table_args__ = (
        UniqueConstraint("merchant_id", "position"),
        CheckConstraint("threshold >= 0", name="threshold_not_negative"),
        CheckConstraint("cashback_bp >= 0 AND cashback_bp <= 10000", name="rate_in_range"),
    )


class Status(db.Model):
    """A member's level, as derived from purchases (``position``) plus what the policy keeps."""

    __tablename__ = "gamification_statuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), unique=True)
    position: Mapped[int] = mapped_column(default=0)  # what the data gives now
    held_position: Mapped[int] = mapped_column(default=0)  # kept when levels cannot drop
    metric: Mapped[int] = mapped_column(default=0)
    reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    level_up_purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    level_up_seen: Mapped[bool] = mapped_column(Boolean, default=True)
    level_up_emailed: Mapped[bool] = mapped_column(Boolean, default=True)
    downgrade_to: Mapped[int | None] = mapped_column()
    downgrade_on: Mapped[date | None] = mapped_column(Date)
    last_downgrade_period: Mapped[str | None] = mapped_column(String(10))

    __table_args__ = (Index("ix_gamification_statuses_merchant_position", "merchant_id", "position"),)

    @property
    def effective(self) -> int:
        return max(self.position, self.held_position)


class Badge(db.Model):
    """A badge a member earned; UNIQUE so each is earned once."""

    __tablename__ = "gamification_badges"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    badge: Mapped[str] = mapped_column(String(30))
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("membership_id", "badge"),)
