"""Memberships, purchases, the append-only points ledger and per-week merchant figures."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.accounts import User
    from webapp.models.network import Merchant

LEDGER_KINDS = ("earn", "redeem", "reward", "referral", "adjust", "expire", "refund")


class Membership(db.Model):
    """A customer's card at one merchant. ``balance`` is a cache of the ledger, guarded by the DB."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    total_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    visits: Mapped[int] = mapped_column(default=0)
    last_purchase_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    join_source: Mapped[str] = mapped_column(String(20), default="link")
    referrer_id: Mapped[int | None] = mapped_column(ForeignKey("memberships.id"))
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
    merchant: Mapped[Merchant] = relationship()

    __table_args__ = (
        UniqueConstraint("user_id", "merchant_id"),
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        Index("ix_memberships_merchant_joined", "merchant_id", "joined_at"),
    )


class Purchase(db.Model):
    """A sale at a merchant's till. One row per idempotency key; refunds are stamped, not deleted."""

    __tablename__ = "purchases"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), index=True)
    cashier_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(BigInteger)  # the bill, minor units
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    points_value: Mapped[int] = mapped_column(BigInteger, default=0)  # what those points paid, minor units
    certificate_value_used: Mapped[int] = mapped_column(BigInteger, default=0)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)  # other plugin reductions, minor units
    amount_paid: Mapped[int] = mapped_column(BigInteger)  # money the customer paid
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    earn_rate_bp: Mapped[int] = mapped_column(default=0)
    idempotency_key: Mapped[str] = mapped_column(String(80))
    fingerprint: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refunded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    merchant: Mapped[Merchant] = relationship()
    membership: Mapped[Membership] = relationship()
    cashier: Mapped[User | None] = relationship(foreign_keys=[cashier_id])
    # The lines picked from the price list, if any (read only: the sale writes them in one INSERT).
    items: Mapped[list[PurchaseItem]] = relationship(
        order_by="PurchaseItem.id", viewonly=True, lazy="select"
    )

    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("points_used >= 0", name="points_used_not_negative"),
        CheckConstraint("amount_paid >= 0", name="amount_paid_not_negative"),
        CheckConstraint("points_earned >= 0", name="points_earned_not_negative"),
        Index("ix_purchases_merchant_created", "merchant_id", "created_at"),
    )


class PurchaseItem(db.Model):
    """One line of a sale picked from the price list: the item's name and unit price copied when
    it was sold (the list may change later; a deleted item leaves the line, without its link)."""

    __tablename__ = "purchase_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchases.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    price_item_id: Mapped[int | None] = mapped_column(ForeignKey("price_items.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(120))
    unit_price: Mapped[int] = mapped_column(BigInteger)  # minor units
    quantity: Mapped[int] = mapped_column()

    __table_args__ = (
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        # Segments: who bought this item (offers' "bought a price-list item").
        Index("ix_purchase_items_merchant_item", "merchant_id", "price_item_id"),
    )

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


class PurchaseDecline(db.Model):
    """The stored refusal of an idempotency key, so a retry replays the decline and never succeeds."""

    __tablename__ = "purchase_declines"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    idempotency_key: Mapped[str] = mapped_column(String(80))
    fingerprint: Mapped[str] = mapped_column(String(64))
    error_kind: Mapped[str] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("merchant_id", "idempotency_key"),)


class LedgerEntry(db.Model):
    """Append-only points movement; the sum over a membership equals its cached balance."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)  # signed points
    # Why, as data: a reason kind ("cashback", "surveys.reward") and its parameters, rendered
    # in the reader's language when shown (``webapp.ledger_reasons``); never a stored sentence.
    reason_kind: Mapped[str] = mapped_column(String(40), default="note")
    reason_params: Mapped[dict] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(60), default="core")
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"), index=True)
    # For entries caused by something other than a purchase: "<plugin>:<table>:<id>".
    object_ref: Mapped[str | None] = mapped_column(String(120))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Credits only: when these points expire at the earliest, by the merchant's policy when they
    # were credited (a later change of policy leaves them alone). ``expiry_idle_months`` is set
    # when the policy was "N months without a visit": a visit since then postpones the date.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expiry_idle_months: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        CheckConstraint(
            "kind IN ('earn', 'redeem', 'reward', 'referral', 'adjust', 'expire', 'refund')",
            name="kind_known",
        ),
        Index("ix_ledger_entries_membership_created", "membership_id", "created_at"),
    )


class MerchantWeeklyStats(db.Model):
    """Running totals per merchant and ISO week, kept inside the purchase transaction.

    The dashboard reads a bounded number of these rows, so its cost does not grow with purchases.
    """

    __tablename__ = "merchant_weekly_stats"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    week_start: Mapped[date] = mapped_column(Date)
    purchases: Mapped[int] = mapped_column(default=0)
    refunds: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of bills, minor units, net of refunds
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    points_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    points_other: Mapped[int] = mapped_column(BigInteger, default=0)  # net of rewards, refunds, adjustments
    new_customers: Mapped[int] = mapped_column(default=0)
    repeat_customers: Mapped[int] = mapped_column(default=0)  # customers whose 2nd visit fell here

    __table_args__ = (UniqueConstraint("merchant_id", "week_start"),)


class CustomerMonthTotals(db.Model):
    """Running totals per card and local calendar month, kept inside the purchase transaction.

    Customer lifetime value and the cohort retention table read these rows (one per card and
    month with a sale), so their cost does not grow with the number of purchases. ``month`` and
    ``join_month`` are the first days of local months where the merchant's network is.
    """

    __tablename__ = "customer_month_totals"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    month: Mapped[date] = mapped_column(Date)
    join_month: Mapped[date] = mapped_column(Date)
    purchases: Mapped[int] = mapped_column(default=0)  # net of refunds
    revenue: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of bills, minor units, net of refunds

    __table_args__ = (
        UniqueConstraint("membership_id", "month"),
        Index("ix_customer_month_totals_merchant_join_month", "merchant_id", "join_month"),
    )


class PointsAdjustment(db.Model):
    """The audit trail of manual adjustments: who added or removed points, how many and why.

    The points move through the ledger (an ``adjust`` entry naming this row in ``object_ref``).
    """

    __tablename__ = "points_adjustments"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # signed points
    reason: Mapped[str] = mapped_column(String(255))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by: Mapped[User | None] = relationship()

    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
    )


class WelcomeBonusClaim(db.Model):
    """One row per merchant and identity (hashed normalised e-mail or phone) that got a welcome
    bonus: the unique pair makes a second bonus for the same person impossible, even when two
    joins race."""

    __tablename__ = "welcome_bonus_claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    identity_hash: Mapped[str] = mapped_column(String(64))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("merchant_id", "identity_hash"),)


class BirthdayBonus(db.Model):
    """A birthday bonus credited to a card in one year; unique, so a task run twice credits once."""

    __tablename__ = "birthday_bonuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    year: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("membership_id", "year"),)


class ExpiryReminder(db.Model):
    """An e-mail telling a customer that points expire on ``expires_on``, ``days_before`` days
    ahead; unique, so each reminder for one expiry date goes once."""

    __tablename__ = "expiry_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    expires_on: Mapped[date] = mapped_column(Date)
    days_before: Mapped[int] = mapped_column()
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("membership_id", "expires_on", "days_before"),)
