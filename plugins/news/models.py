"""The news plugin's table: one row per post, owned by a merchant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.plugin_api import UTCDateTime, db, utcnow

MAX_TITLE = 120
MAX_BODY = 1000
MAX_LINK = 500


class NewsPost(db.Model):
    """A merchant's news post; the body is plain text (rendered escaped, line breaks kept)."""

    __tablename__ = "news_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    title: Mapped[str] = mapped_column(String(MAX_TITLE))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(MAX_LINK), default="")  # "" or an http(s) URL
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Staff who wrote it; emptied if that person's account is erased.
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint(f"length(body) <= {MAX_BODY}", name="body_length"),
        Index("ix_news_posts_merchant_published", "merchant_id", "published_at"),
    )
