"""FAQ search through the core's full-text service (``webapp.services.fulltext``): PostgreSQL
``tsvector`` with the language's stemming, SQLite FTS5 with Snowball stemming. No second search here.

Entries are indexed as kind ``concierge_faq`` with their merchant; the question is the weighted part.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from webapp.plugin_api import fulltext

KIND = "concierge_faq"
MAX_QUERY = 200  # characters of what the customer typed that reach the search
MAX_WORDS = 6  # words searched one by one when the whole question matches nothing
MIN_WORD = 3  # shorter words ("в", "is", "мы") say too little on their own


def index_entry(session: Session, entry) -> None:
    fulltext.index(
        session,
        kind=KIND,
        ref_id=entry.id,
        merchant_id=entry.merchant_id,
        language=entry.language,
        text=f"{entry.question}\n{entry.answer}",
        weight_text=entry.question,
    )


def remove_entry(session: Session, entry_id: int) -> None:
    fulltext.remove(session, kind=KIND, ref_id=entry_id)


def search(
    session: Session, merchant_id: int, query: str, language: str, limit: int = 5
) -> list[int]:
    """Ids of the merchant's FAQ entries matching ``query``, best first.

    Every word must match first (the service's own rule); a question typed in full rarely has all
    its words in one entry, so when that finds nothing each word is searched on its own and the
    entries matching the most words are kept (at most ``MAX_WORDS`` statements).
    """
    query = " ".join((query or "").split())[:MAX_QUERY]
    if len(query) < 2:
        return []
    hits = fulltext.search(
        session, kind=KIND, query=query, language=language, merchant_ids=[merchant_id], limit=limit
    )
    if hits:
        return [hit.ref_id for hit in hits]
    words = [word for word in fulltext.query_terms(query) if len(word) >= MIN_WORD][-MAX_WORDS:]
    if len(words) < 2:
        return []
    scores: dict[int, tuple[int, float]] = {}
    for word in dict.fromkeys(words):
        for hit in fulltext.search(
            session,
            kind=KIND,
            query=word,
            language=language,
            merchant_ids=[merchant_id],
            limit=limit * 4,
        ):
            count, rank = scores.get(hit.ref_id, (0, 0.0))
            scores[hit.ref_id] = (count + 1, rank + hit.rank)
    if not scores:
        return []
    # Only the entries matching the most words: a word such as "you" alone proves nothing.
    most = max(count for count, _rank in scores.values())
    best = sorted(
        ((ref_id, rank) for ref_id, (count, rank) in scores.items() if count == most),
        key=lambda item: (-item[1], item[0]),
    )
    return [ref_id for ref_id, _rank in best[:limit]]
