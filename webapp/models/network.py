"""Networks of neighbouring merchants, their staff and the plugins each merchant has switched on."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.accounts import User

MERCHANT_STATUSES = ("pending", "active", "declined", "suspended")
STAFF_ROLES = ("owner", "cashier")


class Network(db.Model):
    """A street's loyalty network: one currency, one operator, many merchants."""

    __tablename__ = "networks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    currency: Mapped[str] = mapped_column(String(3))  # ISO 4217
    default_locale: Mapped[str] = mapped_column(String(10), default="en")
    # IANA name: every local day, week and month boundary and every time shown is counted in it.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # ISO 3166 alpha-2: the default region of phone numbers written without a country code.
    country: Mapped[str] = mapped_column(String(2), default="", server_default="")
    # How many minor units one point is worth when paying with points.
    point_value_minor: Mapped[int] = mapped_column(default=1)
    description: Mapped[str] = mapped_column(Text, default="")
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    operator: Mapped[User | None] = relationship(foreign_keys=[operator_id])
    merchants: Mapped[list[Merchant]] = relationship(back_populates="network")

    __table_args__ = (CheckConstraint("point_value_minor > 0", name="point_value_positive"),)


class Merchant(db.Model):
    """A business in a network; only ``active`` merchants are listed and can record purchases."""

    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    category: Mapped[str] = mapped_column(String(40), default="other")
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    # A free-text note on the hours ("closed on public holidays"); the hours themselves, which
    # "open now" reads, are ``MerchantHours`` rows.
    opening_hours: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decline_reason: Mapped[str] = mapped_column(Text, default="")
    # Cashback in basis points of the amount paid (500 = 5 %).
    cashback_bp: Mapped[int] = mapped_column(default=500)
    # The largest share of a bill (percent) that may be paid with points.
    max_points_share_pct: Mapped[int] = mapped_column(default=50)
    join_code: Mapped[str] = mapped_column(String(12), unique=True)
    # Points lifecycle (0 = off): a welcome bonus on a person's first joining, a birthday bonus
    # valid ``birthday_bonus_days`` days, and the expiry policy for points credited from now on.
    welcome_bonus_points: Mapped[int] = mapped_column(default=0, server_default="0")
    birthday_bonus_points: Mapped[int] = mapped_column(default=0, server_default="0")
    birthday_bonus_days: Mapped[int] = mapped_column(default=30, server_default="30")
    points_expiry_mode: Mapped[str] = mapped_column(String(10), default="none", server_default="none")
    points_expiry_months: Mapped[int] = mapped_column(default=12, server_default="12")
    # The events some enabled webhook endpoint of the merchant subscribes to, kept by the webhooks
    # service: a sale of a merchant without a subscriber asks nothing about webhooks.
    webhook_events: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Joined: nearly every use of a merchant reads its network (currency, time zone, point value),
    # and a merchant loaded by id would otherwise cost a second statement for it.
    network: Mapped[Network] = relationship(back_populates="merchants", lazy="joined")
    # The people with the owner's role, the one who applied first (read-only: roles are written
    # as StaffRole rows by the staff service).
    owners: Mapped[list[User]] = relationship(
        secondary="staff_roles",
        primaryjoin="and_(Merchant.id == StaffRole.merchant_id, StaffRole.role == 'owner')",
        secondaryjoin="StaffRole.user_id == User.id",
        order_by="StaffRole.id",
        viewonly=True,
    )
    photos: Mapped[list[MerchantPhoto]] = relationship(
        back_populates="merchant", order_by="MerchantPhoto.position", cascade="all, delete-orphan"
    )
    price_items: Mapped[list[PriceItem]] = relationship(
        back_populates="merchant", order_by="(PriceItem.position, PriceItem.id)",
        cascade="all, delete-orphan",
    )
    hours: Mapped[list[MerchantHours]] = relationship(
        order_by="MerchantHours.weekday", cascade="all, delete-orphan"
    )

    @property
    def owner(self) -> User | None:
        """The first owner: the person who applied to the network (co-owners follow in ``owners``)."""
        owners = self.owners
        return owners[0] if owners else None

    __table_args__ = (
        CheckConstraint("cashback_bp >= 0 AND cashback_bp <= 10000", name="cashback_range"),
        CheckConstraint(
            "max_points_share_pct >= 0 AND max_points_share_pct <= 100", name="points_share_range"
        ),
        CheckConstraint(
            "status IN ('pending', 'active', 'declined', 'suspended')", name="status_known"
        ),
        Index("ix_merchants_network_status", "network_id", "status"),
        CheckConstraint(
            "welcome_bonus_points >= 0 AND birthday_bonus_points >= 0 AND birthday_bonus_days > 0",
            name="bonuses_range",
        ),
        CheckConstraint("points_expiry_mode IN ('none', 'earned', 'idle')", name="expiry_mode_known"),
        CheckConstraint(
            "points_expiry_months >= 1 AND points_expiry_months <= 120", name="expiry_months_range"
        ),
    )

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def currency(self) -> str:
        return self.network.currency


class MerchantPhoto(db.Model):
    """A re-encoded photo stored under a random file name in the instance upload folder."""

    __tablename__ = "merchant_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    filename: Mapped[str] = mapped_column(String(80), unique=True)
    width: Mapped[int] = mapped_column(default=0)
    height: Mapped[int] = mapped_column(default=0)
    position: Mapped[int] = mapped_column(default=0)
    alt_text: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    merchant: Mapped[Merchant] = relationship(back_populates="photos")


class PriceItem(db.Model):
    """One line of a merchant's price list: what it is, what it costs, optionally a category and
    a re-encoded photo. Searchable on the street (``webapp.services.street``)."""

    __tablename__ = "price_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    price: Mapped[int] = mapped_column(BigInteger)  # minor units
    category: Mapped[str] = mapped_column(String(60), default="", server_default="")
    photo_filename: Mapped[str | None] = mapped_column(String(80), unique=True)
    photo_width: Mapped[int] = mapped_column(default=0, server_default="0")
    photo_height: Mapped[int] = mapped_column(default=0, server_default="0")
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    merchant: Mapped[Merchant] = relationship(back_populates="price_items")

    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        # The street's alternatives: the cheapest items of one category.
        Index("ix_price_items_category_price", "category", "price"),
    )


class MerchantHours(db.Model):
    """When a merchant opens on one weekday (0 = Monday), in minutes after local midnight of the
    network's time zone. ``closes`` at or before ``opens`` closes after midnight; 0-1440 is open
    around the clock. A weekday without a row is a closed day."""

    __tablename__ = "merchant_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    weekday: Mapped[int] = mapped_column()
    opens: Mapped[int] = mapped_column()
    closes: Mapped[int] = mapped_column()

    __table_args__ = (
        UniqueConstraint("merchant_id", "weekday"),
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
        CheckConstraint("opens >= 0 AND opens < 1440", name="opens_range"),
        CheckConstraint("closes > 0 AND closes <= 1440 AND closes <> opens", name="closes_range"),
    )


class StaffRole(db.Model):
    """A person's role at a merchant: ``owner`` (everything) or ``cashier`` (the till)."""

    __tablename__ = "staff_roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()
    merchant: Mapped[Merchant] = relationship()

    __table_args__ = (
        UniqueConstraint("user_id", "merchant_id"),
        CheckConstraint("role IN ('owner', 'cashier')", name="role_known"),
    )


class StaffInvitation(db.Model):
    """An owner's invitation for a cashier; the link carries a token whose hash is stored."""

    __tablename__ = "staff_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    email: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="cashier")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    merchant: Mapped[Merchant] = relationship()


class MerchantPlugin(db.Model):
    """Whether a plugin is switched on for a merchant, and its settings; rows are never deleted."""

    __tablename__ = "merchant_plugins"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    plugin_name: Mapped[str] = mapped_column(String(60))
    enabled: Mapped[bool] = mapped_column(default=False)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("merchant_id", "plugin_name"),)
