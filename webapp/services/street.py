"""Find it on the street: one search across the price items of every active merchant of a network,
with the price, the cashback, the points a customer would earn for that price, and the
alternatives (the same category at other merchants, cheapest first) side by side.

Statements per search do not depend on how many merchants or items the street has: the full-text
match runs once (at most ``fulltext.MAX_MATCHES`` ranked ids, ``webapp.services.fulltext``), then
the category facets, the matched items with the filters, the alternatives and the hours of the
merchants shown are one statement each; count, order and page come from the bounded match.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, select, union_all
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


class _Statements:
    """The search's statements, built once per dialect and shape with bound parameters: a search
    pays for running them, not for composing and compiling SQL again (most of its cost otherwise).

    Parameters: ``network_id``, the full-text match's (``fulltext.match_params``), ``category``,
    the open-now clock (``hours.open_now_params``), ``ids`` (the match's), ``shown`` and ``cat_<n>``.
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
            filters.append(hours_service.open_now_clause(Merchant.id))
        return filters

    def get(self, session: Session, key: tuple):
        found = self._built.get(key)
        if found is None:
            found = self._built[key] = self._build(session, key)
        return found

    def _build(self, session: Session, key: tuple):
        name = key[0]
        if name == "hours":
            h = MerchantHours
            return select(h.merchant_id, h.weekday, h.opens, h.closes).where(
                h.merchant_id.in_(bindparam("merchant_ids", expanding=True))
            )
        if name == "alternatives":
            _name, groups, open_now = key
            parts = []
            for n in range(groups):
                cheapest = (
                    select(*_COLUMNS)
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
        ids = bindparam("ids", expanding=True)
        if name == "match":
            # The one full-text match of a search: at most fulltext.MAX_MATCHES ranked ids.
            matches = self._matches(session)
            return select(matches.c.ref_id, matches.c.rank)
        if name == "facets":
            return (
                select(PriceItem.category, func.count(PriceItem.id))
                .where(PriceItem.id.in_(ids), PriceItem.category != "")
                .group_by(PriceItem.category)
                .order_by(func.count(PriceItem.id).desc(), PriceItem.category)
                .limit(30)
            )
        _name, category, open_now = key
        # Plain columns, not ORM objects: a page builds no identity map of items it only shows.
        return (
            select(*_COLUMNS)
            .select_from(PriceItem)
            .join(Merchant, Merchant.id == PriceItem.merchant_id)
            .where(PriceItem.id.in_(ids), *self._filters(category, open_now))
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
    if open_now:
        params.update(hours_service.open_now_params(now, network.timezone))
    # The match runs once; facets, count and page are read from its (bounded) ids.
    ranked = dict(connection.execute(sql.get(session, ("match",)), params).all())
    if not ranked:
        return empty
    ids = list(ranked)
    facets = connection.execute(sql.get(session, ("facets",)), {"ids": ids}).all()
    filtered = connection.execute(
        sql.get(session, ("items", bool(category), open_now)), {**params, "ids": ids}
    ).all()
    filtered.sort(key=lambda row: (-ranked[row[0]], row[2], row[0]))  # best match, then cheapest
    total = len(filtered)
    pages = max(1, -(-total // per_page))
    page = min(page, pages)
    rows = filtered[(page - 1) * per_page : page * per_page]
    point_value = network.point_value_minor

    def to_item(row, matched):
        item_id, name, price, category, photo, merchant_id, merchant_name, slug, cashback_bp = row
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
        if open_now:
            values.update(hours_service.open_now_params(now, network.timezone))
        statement = sql.get(session, ("alternatives", len(wanted), open_now))
        alternatives = [to_item(row, False) for row in connection.execute(statement, values)]
    everything = found + alternatives
    merchant_ids = sorted({item.merchant_id for item in everything})
    weekly: dict[int, dict[int, tuple[int, int]]] = {}
    if merchant_ids:
        for merchant_id, weekday, opens, closes in connection.execute(
            sql.get(session, ("hours",)), {"merchant_ids": merchant_ids}
        ):
            weekly.setdefault(merchant_id, {})[weekday] = (opens, closes)
    groups: dict[str, StreetGroup] = {}
    state: dict[int, bool | None] = {
        merchant_id: hours_service.is_open(weekly[merchant_id], now, network.timezone)
        if merchant_id in weekly
        else None
        for merchant_id in merchant_ids
    }
    for item in everything:
        item = replace(item, open_now=state[item.merchant_id])
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
        [(name, int(count)) for name, count in facets],
    )
