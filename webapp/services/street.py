"""Find it on the street: one search across the price items of every active merchant of a network,
with the price, the cashback, the points a customer would earn for that price, and the
alternatives (the same category at other merchants, cheapest first) side by side.

Statements per search do not depend on how many merchants or items the street has: one statement
runs the full-text match once (at most ``fulltext.MAX_MATCHES`` ranked ids,
``webapp.services.fulltext``) as a CTE and reads from it the page (ordered and cut in SQL), the
count and the category facets; the alternatives are a second. Every row carries its merchant's
open state, computed by the database with the bound clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from webapp.extensions import per_dialect
from webapp.models import Merchant, MerchantHours, Network, PriceItem
from webapp.rules import points_earned
from webapp.services import fulltext, price_items
from webapp.services import hours as hours_service

PER_PAGE = 20
ALTERNATIVES_PER_GROUP = 3
ALTERNATIVE_GROUPS = 6  # categories of a page that get alternatives (the best ranked first)
MAX_PAGE = 50


@dataclass(frozen=True)
class StreetItem:
    item_id: int
    name: str
    price: int
    category: str
    photo: str | None
    merchant_id: int
    merchant_name: str
    merchant_slug: str
    cashback_bp: int
    points: int  # what a customer would earn paying ``price`` at the merchant's base rate
    matched: bool  # found by the words typed (False: an alternative of the same category)
    open_now: bool | None = None


@dataclass
class StreetGroup:
    """Items that can stand in for one another: one category (or one item name), cheapest first."""

    label: str
    items: list[StreetItem] = field(default_factory=list)

    @property
    def merchant_count(self) -> int:
        return len({item.merchant_id for item in self.items})


@dataclass
class StreetPage:
    network: Network
    query: str
    category: str
    open_now: bool
    page: int
    pages: int
    total: int
    groups: list[StreetGroup]
    categories: list[tuple[str, int]]

    @property
    def searched(self) -> bool:
        return bool(fulltext.query_terms(self.query))


def clean_query(text: str | None) -> str:
    return " ".join((text or "").replace("\x00", " ").split())[: fulltext.MAX_QUERY_LENGTH]


def _group_key(category: str, name: str) -> str:
    return "c:" + category.casefold() if category else "n:" + " ".join(name.casefold().split())


_COLUMNS = (
    PriceItem.id,
    PriceItem.name,
    PriceItem.price,
    PriceItem.category,
    PriceItem.photo_filename,
    PriceItem.merchant_id,
    Merchant.name,
    Merchant.slug,
    Merchant.cashback_bp,
)


def _open_column():
    """Whether the row's merchant is open now (NULL: it has no weekly hours), computed by the
    database with the bound clock: the page needs no separate statement for the hours."""
    h = MerchantHours
    has_hours = exists(select(h.id).where(h.merchant_id == Merchant.id))
    return case((has_hours, hours_service.open_now_clause(Merchant.id)), else_=null())


class _Statements:
    """The search's statements, built once per dialect and shape with bound parameters: a search
    pays for running them, not for composing and compiling SQL again (most of its cost otherwise).

    Parameters: ``network_id``, the full-text match's (``fulltext.match_params``), ``category``,
    the open-now clock (``hours.open_now_params``, always: rows carry their open state),
    ``limit``/``offset``, ``shown`` and ``cat_<n>``.
    """

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._built: dict[tuple, object] = {}

    def _matches(self, session: Session):
        active = select(Merchant.id).where(
            Merchant.network_id == bindparam("network_id"), Merchant.status == "active"
        )
        # Any words do: the match's own values are bound again on every run.
        return fulltext.matches(session, kind=price_items.KIND, query="x", language="en", merchant_ids=active)

    def _filters(self, category: bool, open_now: bool) -> list:
        filters = []
        if category:
            filters.append(func.lower(PriceItem.category) == bindparam("category"))
        if open_now:
            filters.append(hours_service.open_now_clause(PriceItem.merchant_id))
        return filters

    def get(self, session: Session, key: tuple):
        found = self._built.get(key)
        if found is None:
            found = self._built[key] = self._build(session, key)
        return found

    def _build(self, session: Session, key: tuple):
        name = key[0]
        if name == "alternatives":
            _name, groups, open_now = key
            parts = []
            for n in range(groups):
                cheapest = (
                    select(*_COLUMNS, _open_column().label("open"))
                    .select_from(PriceItem)
                    .join(Merchant, Merchant.id == PriceItem.merchant_id)
                    .where(
                        PriceItem.category == bindparam(f"cat_{n}"),
                        Merchant.network_id == bindparam("network_id"),
                        Merchant.status == "active",
                        PriceItem.id.not_in(bindparam("shown", expanding=True)),
                        *self._filters(False, open_now),
                    )
                    .order_by(PriceItem.price, PriceItem.id)
                    .limit(ALTERNATIVES_PER_GROUP)
                    .subquery()
                )
                parts.append(select(cheapest))
            return union_all(*parts)
        _name, category, open_now = key
        # One statement for the page, the count and the facets: the full-text match runs once as
        # a CTE (materialized: it is read three times) and its ≤ MAX_MATCHES ids never travel to
        # Python and back as IN lists (that round trip was a third of a search at full size).
        found = self._matches(session)
        matched = select(found.c.ref_id, found.c.rank).cte("street_match")
        on_item = PriceItem.id == matched.c.ref_id
        if self.dialect == "postgresql":
            # "id = ANY(ARRAY(the match's ids))" makes PostgreSQL probe the primary key for the
            # ≤ 1,000 matches instead of hashing all 50,000 items (three seq scans: 10 ms).
            on_item = and_(on_item, PriceItem.id == func.any(literal_column(
                "ARRAY(SELECT street_match.ref_id FROM street_match)")))
        # The match holds only active merchants of the network: picking the page and counting
        # need no join with merchants (1,000 lookups saved per search).
        joined = matched.join(PriceItem, on_item)
        filters = self._filters(category, open_now)
        # Part 0: the page, best match first, then cheapest, then id; LIMIT/OFFSET in SQL. The
        # page's ids are picked first and only their rows get columns and the open state (the
        # correlated hours lookups would otherwise run for every match before the sort).
        picked = (
            select(PriceItem.id.label("item_id"), matched.c.rank.label("rank"))
            .select_from(joined)
            .where(*filters)
            .order_by(matched.c.rank.desc(), PriceItem.price, PriceItem.id)
            .limit(bindparam("limit", type_=Integer))
            .offset(bindparam("offset", type_=Integer))
            .subquery("picked")
        )
        page = (
            select(literal_column("0").label("part"), *_COLUMNS, _open_column().label("open"),
                   picked.c.rank.label("rank"))
            .select_from(picked)
            .join(PriceItem, PriceItem.id == picked.c.item_id)
            .join(Merchant, Merchant.id == PriceItem.merchant_id)
            .subquery()
        )
        # The other parts fill the same columns, with typed NULLs where they have nothing.
        blank = [cast(null(), column.type).label(f"blank_{n}") for n, column in enumerate(_COLUMNS)]
        no_open = cast(null(), Boolean).label("open")
        # Part 1: how many matches pass the filters (in ``id``).
        total = (
            select(literal_column("1"), func.count().label("id"), *blank[1:], no_open,
                   cast(null(), Float).label("rank"))
            .select_from(joined)
            .where(*filters)
        )
        # Part 2: the category facets of the whole match, unfiltered (count in ``rank``).
        facets = (
            select(
                literal_column("2").label("part"),
                *blank[:3],
                PriceItem.category.label("category"),
                *blank[4:],
                no_open,
                cast(func.count(PriceItem.id), Float).label("rank"),
            )
            .select_from(matched.join(PriceItem, on_item))
            .where(PriceItem.category != "")
            .group_by(PriceItem.category)
            .order_by(func.count(PriceItem.id).desc(), PriceItem.category)
            .limit(30)
            .subquery()
        )
        # Part 0 in page order, part 2 in facet order (count, then category in the database's
        # collation); NULLs tie.
        return union_all(select(page), total, select(facets)).order_by(
            literal_column("part"), literal_column("rank").desc(), literal_column("price"),
            literal_column("id"), literal_column("category"),
        )


_sql = per_dialect(_Statements)


def search(
    session: Session,
    network: Network,
    *,
    query: str,
    category: str = "",
    open_now: bool = False,
    page: int = 1,
    per_page: int = PER_PAGE,
    now: datetime | None = None,
) -> StreetPage:
    query, category = clean_query(query), (category or "").strip()[: price_items.MAX_CATEGORY]
    page = min(max(1, page), MAX_PAGE)
    now = now or datetime.now(UTC)
    empty = StreetPage(network, query, category, open_now, 1, 1, 0, [], [])
    language = price_items.language_of(network)
    match = fulltext.match_params(session, query, language)
    if match is None:
        return empty
    sql = _sql(session)
    connection = session.connection()
    params = {"network_id": network.id, **match}
    if category:
        params["category"] = category.casefold()
    clock = hours_service.open_now_params(now, network.timezone)  # rows carry their open state
    params.update(clock)
    statement = sql.get(session, ("page", bool(category), open_now))
    params["limit"], params["offset"] = per_page, (page - 1) * per_page
    rows, total, facets = _run_page(connection, statement, params)
    pages = max(1, -(-total // per_page))
    if page > pages:  # past the last page: show the last one (one more statement)
        page = pages
        if total:
            params["offset"] = (page - 1) * per_page
            rows, total, facets = _run_page(connection, statement, params)
    if not total and not facets:
        return empty
    point_value = network.point_value_minor

    def to_item(row, matched):
        item_id, name, price, category, photo, merchant_id, merchant_name, slug, cashback_bp = row[:9]
        is_open = row[9]
        return StreetItem(
            item_id,
            name,
            price,
            category,
            photo,
            merchant_id,
            merchant_name,
            slug,
            cashback_bp,
            points_earned(price, cashback_bp, point_value),
            matched,
            None if is_open is None else bool(is_open),
        )

    found = [to_item(row, True) for row in rows]
    # Alternatives: the same category (as written) at any active merchant, cheapest first, a few
    # each. One SELECT per category on the page, joined by UNION ALL into one statement; each walks
    # the (category, price) index, so its cost does not grow with the street.
    wanted = list(dict.fromkeys(item.category for item in found if item.category))[
        :ALTERNATIVE_GROUPS
    ]
    alternatives: list[StreetItem] = []
    if wanted:
        values = {"network_id": network.id, "shown": [item.item_id for item in found]}
        values.update({f"cat_{n}": name for n, name in enumerate(wanted)})
        values.update(clock)
        statement = sql.get(session, ("alternatives", len(wanted), open_now))
        alternatives = [to_item(row, False) for row in connection.execute(statement, values)]
    groups: dict[str, StreetGroup] = {}
    for item in found + alternatives:
        key = _group_key(item.category, item.name)
        groups.setdefault(key, StreetGroup(item.category or item.name)).items.append(item)
    for group in groups.values():
        group.items.sort(key=lambda item: (item.price, item.merchant_name, item.item_id))
    return StreetPage(
        network,
        query,
        category,
        open_now,
        page,
        pages,
        total,
        list(groups.values()),
        facets,
    )


def _run_page(connection, statement, params) -> tuple[list, int, list[tuple[str, int]]]:
    """(page rows, total, facets) from the one page statement: its parts 0, 1 and 2."""
    rows, total, facets = [], 0, []
    for row in connection.execute(statement, params):
        part = row[0]
        if part == 0:
            rows.append(row[1:11])
        elif part == 1:
            total = int(row[1])
        else:
            facets.append((row[4], int(row[11])))
    return rows, total, facets
