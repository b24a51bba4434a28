"""core: full-text search documents (PostgreSQL tsvector + GIN, SQLite FTS5).

Revision ID: core_0010_price_items
Revises: core_0008_webhook_events
Create Date: 2026-12-07 06:50:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "core_0010_price_items"
down_revision = "core_0009_ledger_reason_kinds"
branch_labels = None
depends_on = None

FTS_TABLE = "search_documents_fts"
GIN_INDEX = "ix_search_documents_tsv"


def upgrade():
    op.create_table(
        "search_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("tsv", sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql"), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_search_documents_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_documents")),
        sa.UniqueConstraint("kind", "ref_id", name=op.f("uq_search_documents_kind_ref_id")),
    )
    op.create_index(op.f("ix_search_documents_merchant_id"), "search_documents", ["merchant_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX {GIN_INDEX} ON search_documents USING gin (tsv)")
    else:
        op.execute(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(title, body, tokenize = 'unicode61')")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    op.drop_index(op.f("ix_search_documents_merchant_id"), table_name="search_documents")
    op.drop_table("search_documents")
