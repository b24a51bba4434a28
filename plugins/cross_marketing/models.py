"""The cross_marketing tables: offers, partnerships, certificates, their event ledger and caps."""

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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.plugin_api import Merchant, User, UTCDateTime, db, utcnow

REMAINDER_POLICIES = ("lost", "kept")
PARTNERSHIP_STATUSES = ("invited", "active", "paused", "ended", "declined")
CERTIFICATE_STATUSES = ("issued", "attached", "redeemed", "voided", "expired")
# "restored": a refunded purchase gives back the certificate it had used.
EVENT_KINDS = ("issued", "redeemed", "restored", "voided", "expired", "transferred")
MAX_MESSAGE = 200
MAX_REASON = 200


class Offer(db.Model):
    """A certificate the issuer (where it is spent) lets neighbours hand out."""

    __tablename__ = "cross_marketing_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    face_value: Mapped[int] = mapped_column(BigInteger)  # minor units
    min_purchase: Mapped[int] = mapped_column(BigInteger, default=0)  # at the issuer, to redeem
    validity_days: Mapped[int] = mapped_column()
    total_cap: Mapped[int | None] = mapped_column()  # None: no limit
    per_customer_cap: Mapped[int | None] = mapped_column()
    fee: Mapped[int] = mapped_column(BigInteger, default=0)  # owed to the distributor per redeemed certificate
    message: Mapped[str] = mapped_column(String(MAX_MESSAGE), default="")
    remainder_policy: Mapped[str] = mapped_column(String(10), default="lost")
    # Certificates issued and not voided; only a guarded UPDATE changes it (see services.issue).
    issued_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    issuer: Mapped[Merchant] = relationship()

    __table_args__ = (
        CheckConstraint("face_value > 0", name="face_value_positive"),
        CheckConstraint("min_purchase >= 0", name="min_purchase_not_negative"),
        CheckConstraint("validity_days > 0", name="validity_positive"),
        CheckConstraint("fee >= 0", name="fee_not_negative"),
        CheckConstraint("remainder_policy IN ('lost', 'kept')", name="remainder_known"),
        CheckConstraint("issued_count >= 0", name="issued_not_negative"),
        CheckConstraint("total_cap IS NULL OR issued_count <= total_cap", name="within_total_cap"),
    )


class Partnership(db.Model):
    """An offer handed out by one neighbour (the distributor) under its own rule."""

    __tablename__ = "cross_marketing_partnerships"

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("cross_marketing_offers.id"))
    distributor_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="invited")
    min_purchase: Mapped[int] = mapped_column(BigInteger, default=0)  # at the distributor, to receive one
    max_per_day: Mapped[int | None] = mapped_column()
    # The per-day counter: how many were issued on ``counted_day`` (UTC).
    counted_day: Mapped[date | None] = mapped_column(Date)
    issued_on_day: Mapped[int] = mapped_column(default=0)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    offer: Mapped[Offer] = relationship()
    distributor: Mapped[Merchant] = relationship(foreign_keys=[distributor_id])

    __table_args__ = (
        UniqueConstraint("offer_id", "distributor_id"),
        CheckConstraint(
            "status IN ('invited', 'active', 'paused', 'ended', 'declined')", name="status_known"
        ),
        CheckConstraint("min_purchase >= 0", name="min_purchase_not_negative"),
        CheckConstraint("max_per_day IS NULL OR issued_on_day <= max_per_day", name="within_day_cap"),
    )


class HolderCount(db.Model):
    """How many certificates of an offer a customer received: the per-customer cap's counter."""

    __tablename__ = "cross_marketing_holder_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("cross_marketing_offers.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        UniqueConstraint("offer_id", "user_id"),
        CheckConstraint("issued >= 0", name="issued_not_negative"),
    )


class Certificate(db.Model):
    """One certificate. The code is kept as a keyed hash (lookup) and encrypted (holder's view)."""

    __tablename__ = "cross_marketing_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("cross_marketing_offers.id"), index=True)
    partnership_id: Mapped[int] = mapped_column(ForeignKey("cross_marketing_partnerships.id"))
    issuer_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    distributor_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    holder_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_last4: Mapped[str] = mapped_column(String(4))
    code_sealed: Mapped[str] = mapped_column(String(120))  # nonce + XOR stream, hex
    face_value: Mapped[int] = mapped_column(BigInteger)
    balance: Mapped[int] = mapped_column(BigInteger)  # what is left to spend (policy "kept")
    status: Mapped[str] = mapped_column(String(10), default="issued")
    # The purchase it came with; ``None`` when given as a reward (``issued_reason`` says why).
    issued_purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"), index=True)
    issued_reason: Mapped[str] = mapped_column(String(MAX_REASON), default="")
    redeemed_purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    gift_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    reminded_week_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_day_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    offer: Mapped[Offer] = relationship()
    issuer: Mapped[Merchant] = relationship(foreign_keys=[issuer_id])
    distributor: Mapped[Merchant] = relationship(foreign_keys=[distributor_id])
    holder: Mapped[User] = relationship()

    __table_args__ = (
        CheckConstraint(
            "status IN ('issued', 'attached', 'redeemed', 'voided', 'expired')", name="status_known"
        ),
        CheckConstraint("balance >= 0 AND balance <= face_value", name="balance_range"),
        Index("ix_cross_marketing_certificates_issuer_status", "issuer_id", "status"),
        Index("ix_cross_marketing_certificates_status_expires", "status", "expires_at"),
    )


class CertificateEvent(db.Model):
    """Append-only history of certificates; economics and settlement are sums over it."""

    __tablename__ = "cross_marketing_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("cross_marketing_certificates.id"), index=True)
    partnership_id: Mapped[int] = mapped_column(ForeignKey("cross_marketing_partnerships.id"))
    issuer_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    distributor_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    kind: Mapped[str] = mapped_column(String(12))
    # Signed: "restored" carries the negative of what its "redeemed" counted.
    count: Mapped[int] = mapped_column(default=0)  # +1/-1 redemptions for settlement
    face_value: Mapped[int] = mapped_column(BigInteger, default=0)
    value_used: Mapped[int] = mapped_column(BigInteger, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    purchase_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    new_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "kind IN ('issued', 'redeemed', 'restored', 'voided', 'expired', 'transferred')",
            name="kind_known",
        ),
        Index("ix_cross_marketing_events_partnership_created", "partnership_id", "created_at"),
        Index("ix_cross_marketing_events_issuer_created", "issuer_id", "created_at"),
        Index("ix_cross_marketing_events_distributor_created", "distributor_id", "created_at"),
    )
