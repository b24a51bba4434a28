"""Full-text search documents shared by every feature that searches text (price items, FAQ entries).

One row per searchable thing, identified by ``(kind, ref_id)``. PostgreSQL keeps the weighted
``tsvector`` in the row (GIN index); SQLite keeps the stemmed words in an FTS5 table whose rowid
is the row's id. Both extras are created by DDL events (``after_create``) and by the migration.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DDL, ForeignKey, String, Text, UniqueConstraint, event
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

# The SQLite FTS5 table (and the shadow tables SQLite makes for it) and PostgreSQL's GIN index.
FTS_TABLE = "search_documents_fts"
GIN_INDEX = "ix_search_documents_tsv"


class SearchDocument(db.Model):
    """The searchable text of one ``(kind, ref_id)``, scoped to a merchant when it has one."""

    __tablename__ = "search_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    ref_id: Mapped[int] = mapped_column()
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    language: Mapped[str] = mapped_column(String(10))
    # PostgreSQL: setweight(title, 'A') || setweight(body, 'B'); always NULL on SQLite.
    tsv: Mapped[str | None] = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("kind", "ref_id"),)


# The same statements the migration runs, so ``create_all`` (tests, a fresh install) matches it.
SQLITE_FTS_DDL = f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(title, body, tokenize = 'unicode61')"
POSTGRES_GIN_DDL = f"CREATE INDEX IF NOT EXISTS {GIN_INDEX} ON search_documents USING gin (tsv)"

event.listen(
    SearchDocument.__table__, "after_create", DDL(SQLITE_FTS_DDL).execute_if(dialect="sqlite")
)
event.listen(
    SearchDocument.__table__, "after_create", DDL(POSTGRES_GIN_DDL).execute_if(dialect="postgresql")
)
event.listen(
    SearchDocument.__table__,
    "before_drop",
    DDL(f"DROP TABLE IF EXISTS {FTS_TABLE}").execute_if(dialect="sqlite"),
)
