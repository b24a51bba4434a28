"""The transactional outbox: after-commit work written in the same transaction as what caused it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class OutboxMessage(db.Model):
    """One piece of follow-up work (a plugin's after-commit hook, an e-mail, a webhook).

    Written inside the transaction of the event that needs it, so it exists exactly when the event
    does; a relay hands due rows to the task queue, and the worker claims, runs and marks them done.
    """

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    # A worker running the message holds it until then; another worker may take it over after.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    relayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # gave up after its attempts
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_outbox_messages_pending", "done_at", "due_at"),)
