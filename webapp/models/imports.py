"""Customer imports: an uploaded CSV with its column mapping and progress, and one row per
imported person (the key that makes importing the same file twice change nothing)."""

from __future__ import annotations

from datetime import datetime

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
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

IMPORT_STATUSES = ("uploaded", "checking", "checked", "queued", "running", "done", "failed")


class CustomerImport(db.Model):
    """One upload: the decoded text (so any worker can read it), the mapping, and how far it got.

    ``next_row`` counts data rows whose batch is committed; a resumed import starts there.
    """

    __tablename__ = "customer_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(255), default="")
    encoding: Mapped[str] = mapped_column(String(20), default="utf-8")
    delimiter: Mapped[str] = mapped_column(String(1), default=",")
    content: Mapped[str] = mapped_column(Text)
    header: Mapped[list] = mapped_column(JSON, default=list)
    # Field name per column ("" for a column left out), in column order.
    mapping: Mapped[list] = mapped_column(JSON, default=list)
    # The dry run's outcome (counts and the first problems in words), shown before importing.
    check_summary: Mapped[dict | None] = mapped_column(JSON)
    total_rows: Mapped[int] = mapped_column(default=0)
    next_row: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(20), default="uploaded")
    created_count: Mapped[int] = mapped_column(default=0)
    linked_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    failed_count: Mapped[int] = mapped_column(default=0)
    points_imported: Mapped[int] = mapped_column(BigInteger, default=0)
    failure: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "status IN ('uploaded', 'checking', 'checked', 'queued', 'running', 'done', 'failed')",
            name="status_known",
        ),
        CheckConstraint("next_row >= 0 AND next_row <= total_rows", name="progress_in_range"),
        Index("ix_customer_imports_merchant_created", "merchant_id", "created_at"),
    )

    @property
    def percent(self) -> int:
        return 100 if not self.total_rows else self.next_row * 100 // self.total_rows

    @property
    def is_active(self) -> bool:
        return self.status in ("checking", "queued", "running")


class CustomerImportRow(db.Model):
    """A person imported for a merchant, keyed by who they are (phone, else e-mail, else card).

    The unique key per merchant is what makes a re-import, a resumed batch or a second worker
    unable to create anyone or credit any points twice.
    """

    __tablename__ = "customer_import_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    import_id: Mapped[int] = mapped_column(ForeignKey("customer_imports.id"), index=True)
    row_key: Mapped[str] = mapped_column(String(64))
    row_number: Mapped[int] = mapped_column()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    # The birthday as the previous program knew it: ISO date, or "--MM-DD" without a year. A new
    # person with recorded consent also gets it in ``users.birth_*`` (birthday bonuses read it).
    birthday: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("merchant_id", "row_key"),)
