"""One full-text search service for SQLite and PostgreSQL.

Documents are identified by ``(kind, ref_id)`` (``"price_item", 42``), optionally belong to a
merchant, and carry a *title* (``weight_text``, ranked higher) and a *body* (``text``).

- PostgreSQL: a weighted ``tsvector`` built with the language's text-search configuration
  (``russian``, ``english``; ``simple`` for the others), a GIN index, ``to_tsquery`` ranked by
  ``ts_rank``.
- SQLite: an FTS5 table holding the words stemmed in Python by ``snowballstemmer`` (the same
  Snowball stemmers PostgreSQL uses), ranked by ``bm25``.

Kazakh and Bulgarian have no stemmer in either database: their words are stored lower-cased and
every query word matches as a prefix ("шаш" finds "шашты"), which catches most suffixes.

As the user types, the last word of a query always matches as a prefix. A query is cut to
``MAX_QUERY_LENGTH`` characters and ``MAX_TERMS`` words; only letters and digits reach the
database, always as a bound parameter, so quotes, ``*``, ``NEAR``, ``OR``, ``-`` or NUL bytes are
plain text, never syntax.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer
from sqlalchemy import Float, bindparam, cast, delete, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select, Subquery

from webapp.extensions import upsert_insert
from webapp.models.base import utcnow
from webapp.models.search import FTS_TABLE, GIN_INDEX, SearchDocument

MAX_QUERY_LENGTH = 100
MAX_TERMS = 8
MAX_TEXT_LENGTH = 20_000
MAX_MATCHES = 1000  # the most documents one query considers (best ranked first)
# Title words weigh this much more than body words (bm25 column weights on SQLite).
TITLE_WEIGHT = 4.0

# Language code -> (PostgreSQL configuration, Snowball stemmer name or None).
LANGUAGES: dict[str, tuple[str, str | None]] = {
    "ru": ("russian", "russian"),
    "en": ("english", "english"),
}
FALLBACK = ("simple", None)

_WORD = re.compile(r"[^\W_]+")
# The FTS5 table's name is a constant (webapp.models.search.FTS_TABLE); values are bound.
_FTS_DELETE = text("DELETE FROM search_documents_fts WHERE rowid = :id")
_FTS_INSERT = text(
    "INSERT INTO search_documents_fts (rowid, title, body) VALUES (:id, :title, :body)"
)
assert FTS_TABLE == "search_documents_fts"


@dataclass(frozen=True)
class Document:
    kind: str
    ref_id: int
    merchant_id: int | None
    language: str
    text: str
    weight_text: str = ""


@dataclass(frozen=True)
class Hit:
    ref_id: int
    merchant_id: int | None
    rank: float


def fulltext_tables() -> frozenset[str]:
    """Database objects the service creates outside the models (for schema comparisons)."""
    shadows = ("data", "idx", "content", "docsize", "config")
    return frozenset({FTS_TABLE, GIN_INDEX, *(f"{FTS_TABLE}_{name}" for name in shadows)})


def _language(code: str | None) -> tuple[str, str | None]:
    base = (code or "").split("_")[0].split("-")[0].lower()
    return LANGUAGES.get(base, FALLBACK)


@lru_cache(maxsize=8)
def _stemmer(name: str):
    return snowballstemmer.stemmer(name)


def words(value: str | None) -> list[str]:
    """Lower-cased letter/digit runs of ``value`` (NUL bytes and punctuation are separators)."""
    return _WORD.findall((value or "").replace("\x00", " ").lower())


def stems(value: str | None, language: str | None) -> list[str]:
    """The words of ``value`` as the index stores them on SQLite for ``language``."""
    found = words(value)
    stemmer_name = _language(language)[1]
    if stemmer_name is None:
        return found
    stemmer = _stemmer(stemmer_name)
    if stemmer_name == "english":
        return [stemmer.stemWord(word) for word in found]
    # Like PostgreSQL's ``russian`` configuration: Latin words ("latte") use the English stemmer.
    english = _stemmer("english")
    return [(english if word.isascii() else stemmer).stemWord(word) for word in found]


def query_terms(query: str | None) -> list[str]:
    """The words of a search query, bounded: at most ``MAX_TERMS`` from ``MAX_QUERY_LENGTH`` chars."""
    return words((query or "")[:MAX_QUERY_LENGTH])[:MAX_TERMS]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# --- writing -------------------------------------------------------------------------------------


def index(
    session: Session,
    *,
    kind: str,
    ref_id: int,
    merchant_id: int | None,
    language: str,
    text: str,
    weight_text: str = "",
) -> None:
    """Add or replace the document ``(kind, ref_id)``. Runs in the caller's transaction."""
    index_many(session, [Document(kind, ref_id, merchant_id, language, text, weight_text)])


def index_many(session: Session, documents: Sequence[Document]) -> None:
    """Add or replace many documents in a few statements (demo data, imports, the bench)."""
    if not documents:
        return
    now = utcnow()
    rows = [
        {
            "kind": doc.kind,
            "ref_id": doc.ref_id,
            "merchant_id": doc.merchant_id,
            "language": (doc.language or "")[:10],
            "title": (doc.weight_text or "")[:MAX_TEXT_LENGTH],
            "body": (doc.text or "")[:MAX_TEXT_LENGTH],
            "config": _language(doc.language)[0],
            "updated_at": now,
        }
        for doc in documents
    ]
    table = SearchDocument.__table__
    insert = upsert_insert(session)(table)
    if _dialect(session) == "postgresql":
        config = cast(bindparam("config"), REGCONFIG)
        tsv = func.setweight(
            func.to_tsvector(config, bindparam("title")), literal_column("'A'")
        ).op("||")(
            func.setweight(func.to_tsvector(config, bindparam("body")), literal_column("'B'"))
        )
        statement = insert.values(
            kind=bindparam("kind"),
            ref_id=bindparam("ref_id"),
            merchant_id=bindparam("merchant_id"),
            language=bindparam("language"),
            updated_at=bindparam("updated_at"),
            tsv=tsv,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["kind", "ref_id"],
            set_={
                "merchant_id": statement.excluded.merchant_id,
                "language": statement.excluded.language,
                "updated_at": statement.excluded.updated_at,
                "tsv": statement.excluded.tsv,
            },
        )
        session.execute(statement, rows)
        return
    statement = insert.values(
        kind=bindparam("kind"),
        ref_id=bindparam("ref_id"),
        merchant_id=bindparam("merchant_id"),
        language=bindparam("language"),
        updated_at=bindparam("updated_at"),
    )
    statement = statement.on_conflict_do_update(
        index_elements=["kind", "ref_id"],
        set_={
            "merchant_id": statement.excluded.merchant_id,
            "language": statement.excluded.language,
            "updated_at": statement.excluded.updated_at,
        },
    )
    session.execute(statement, rows)
    ids: dict[tuple[str, int], int] = {}
    for kind in {row["kind"] for row in rows}:
        refs = sorted({row["ref_id"] for row in rows if row["kind"] == kind})
        for start in range(0, len(refs), 500):
            found = session.execute(
                select(SearchDocument.id, SearchDocument.ref_id).where(
                    SearchDocument.kind == kind,
                    SearchDocument.ref_id.in_(refs[start : start + 500]),
                )
            )
            ids.update({(kind, ref_id): doc_id for doc_id, ref_id in found})
    fts_rows = [
        {
            "id": ids[(row["kind"], row["ref_id"])],
            "title": " ".join(stems(row["title"], row["language"])),
            "body": " ".join(stems(row["body"], row["language"])),
        }
        for row in rows
    ]
    session.execute(_FTS_DELETE, [{"id": r["id"]} for r in fts_rows])
    session.execute(_FTS_INSERT, fts_rows)


def remove(session: Session, *, kind: str, ref_id: int) -> None:
    """Forget the document ``(kind, ref_id)`` (nothing happens when there is none)."""
    remove_many(session, kind=kind, ref_ids=[ref_id])


def remove_many(session: Session, *, kind: str, ref_ids: Iterable[int]) -> None:
    refs = sorted(set(ref_ids))
    if not refs:
        return
    where = (SearchDocument.kind == kind, SearchDocument.ref_id.in_(refs))
    if _dialect(session) == "sqlite":
        doc_ids = session.scalars(select(SearchDocument.id).where(*where)).all()
        if doc_ids:
            session.execute(_FTS_DELETE, [{"id": i} for i in doc_ids])
    session.execute(delete(SearchDocument).where(*where))


# --- searching -----------------------------------------------------------------------------------


def _postgres_query(terms: list[str], prefix_all: bool) -> str:
    """``to_tsquery`` text from letter/digit words only: ``a & b & c:*``."""
    parts = [
        term + (":*" if prefix_all or i == len(terms) - 1 else "") for i, term in enumerate(terms)
    ]
    return " & ".join(parts)


def _sqlite_query(terms: list[str], language: str) -> str:
    """An FTS5 MATCH expression of quoted stems (stems are letters/digits only): ``"a" "b"*``."""
    stemmer_name = _language(language)[1]
    prefix_all = stemmer_name is None
    stemmed = stems(" ".join(terms), language)
    parts = []
    for i, stem in enumerate(stemmed):
        quoted = '"' + stem.replace('"', "") + '"'
        parts.append(quoted + ("*" if prefix_all or i == len(stemmed) - 1 else ""))
    return " AND ".join(parts)


def matches(
    session: Session,
    *,
    kind: str,
    query: str,
    language: str,
    merchant_ids: Iterable[int] | Select | None = None,
    limit: int = MAX_MATCHES,
) -> Subquery | None:
    """A subquery of ``(ref_id, merchant_id, rank)`` matching ``query`` (higher rank = better), to
    join with the caller's own tables (filters, pagination); None when the query has no words.

    ``merchant_ids`` limits the documents to those merchants: a list, or a SELECT of ids. At most
    ``limit`` best matches are kept: the bound keeps a one-letter prefix cheap, and it makes SQLite
    run the match once (a LIMITed subquery is not flattened into the caller's joins, where the
    planner could otherwise re-run the FTS query for every outer row).
    """
    terms = query_terms(query)
    if not terms:
        return None
    doc = SearchDocument.__table__
    if _dialect(session) == "postgresql":
        config_name, stemmer_name = _language(language)
        tsquery = func.to_tsquery(
            cast(bindparam("fts_config", config_name), REGCONFIG),
            bindparam("fts_query", _postgres_query(terms, stemmer_name is None)),
        )
        statement = select(
            doc.c.ref_id, doc.c.merchant_id, func.ts_rank(doc.c.tsv, tsquery).label("rank")
        ).where(doc.c.kind == kind, doc.c.tsv.op("@@")(tsquery))
    else:
        fts = literal_column(FTS_TABLE)
        statement = (
            select(
                doc.c.ref_id,
                doc.c.merchant_id,
                (-func.bm25(fts, TITLE_WEIGHT, 1.0, type_=Float)).label("rank"),
            )
            .select_from(
                doc.join(text(FTS_TABLE), literal_column(f"{FTS_TABLE}.rowid") == doc.c.id)
            )
            .where(
                doc.c.kind == kind,
                fts.op("MATCH")(bindparam("fts_query", _sqlite_query(terms, language))),
            )
        )
    if merchant_ids is not None:
        if not isinstance(merchant_ids, Select):
            merchant_ids = sorted(set(merchant_ids))
        statement = statement.where(doc.c.merchant_id.in_(merchant_ids))
    statement = statement.order_by(literal_column("rank").desc(), doc.c.ref_id).limit(
        max(1, min(int(limit), MAX_MATCHES))
    )
    return statement.subquery("fulltext_matches")


def match_params(session: Session, query: str, language: str) -> dict[str, str] | None:
    """The bound values of a ``matches`` subquery for ``query``: a caller that built the subquery
    once (with any query) runs it for another query with these parameters. None without words."""
    terms = query_terms(query)
    if not terms:
        return None
    if _dialect(session) == "postgresql":
        config_name, stemmer_name = _language(language)
        return {"fts_config": config_name, "fts_query": _postgres_query(terms, stemmer_name is None)}
    return {"fts_query": _sqlite_query(terms, language)}


def search(
    session: Session,
    *,
    kind: str,
    query: str,
    language: str,
    merchant_ids: Iterable[int] | Select | None = None,
    limit: int = 20,
) -> list[Hit]:
    """The best ``limit`` documents of ``kind`` for ``query``, best first (one statement)."""
    limit = max(1, min(int(limit), 200))
    found = matches(
        session, kind=kind, query=query, language=language, merchant_ids=merchant_ids, limit=limit
    )
    if found is None:
        return []
    rows = session.execute(
        select(found.c.ref_id, found.c.merchant_id, found.c.rank)
        .order_by(found.c.rank.desc(), found.c.ref_id)
        .limit(limit)
    )
    return [Hit(int(ref_id), merchant_id, float(rank)) for ref_id, merchant_id, rank in rows]


__all__ = [
    "Document",
    "Hit",
    "fulltext_tables",
    "index",
    "index_many",
    "matches",
    "query_terms",
    "remove",
    "remove_many",
    "search",
    "stems",
    "words",
]
