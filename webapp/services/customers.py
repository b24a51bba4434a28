"""A merchant's customers: the searchable, sortable list and the portrait of one membership."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session, contains_eager

from webapp.models import Membership, Merchant, Purchase, User
from webapp.services import codes, phones

PER_PAGE = 25
MAX_PAGE = 10_000  # deeper pages are a crawler, not an owner
MAX_QUERY_LENGTH = 100

# Each sort names its columns; ``joined`` (the default) walks the (merchant_id, joined_at) index.
SORTS = {
    "joined": (Membership.joined_at.desc(), Membership.id.desc()),
    "name": (User.name.asc(), Membership.id.asc()),
    "spend": (Membership.total_spent.desc(), Membership.id.desc()),
    "visits": (Membership.visits.desc(), Membership.id.desc()),
    "balance": (Membership.balance.desc(), Membership.id.desc()),
    "last_visit": (
        Membership.last_purchase_at.desc().nulls_last(),
        Membership.id.desc(),
    ),
}
DEFAULT_SORT = "joined"

T = TypeVar("T")
_PHONE_LIKE = re.compile(r"[\d\s()+.-]+")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows; ``has_next`` comes from fetching one row more, so no COUNT(*) is needed."""

    items: list[T]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def clamp_page(value: object) -> int:
    try:
        page = int(str(value))
    except (TypeError, ValueError):
        return 1
    return min(max(page, 1), MAX_PAGE)


def _search_condition(query: str, region: str | None = None):
    """Name, e-mail, phone (a whole number in any spelling, or some of its digits) or card code;
    LIKE wildcards in the query are taken literally."""
    text = query.strip()[:MAX_QUERY_LENGTH]
    conditions = [User.name.icontains(text, autoescape=True), User.email.icontains(text, autoescape=True)]
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) >= 3 and _PHONE_LIKE.fullmatch(text):
        conditions.append(User.phone.contains(digits, autoescape=True))
        whole = phones.parse_or_none(text, region)
        if whole:
            conditions.append(User.phone == whole)
    compact = "".join(ch for ch in text.upper() if ch not in " -")
    if compact:
        try:
            conditions.append(User.card_code == codes.normalize(compact, 10))
        except codes.InvalidCode:
            if len(compact) >= 4:
                conditions.append(User.card_code.startswith(compact, autoescape=True))
    return or_(*conditions)


def search_customers(
    session: Session,
    merchant: Merchant,
    query: str = "",
    sort: str = DEFAULT_SORT,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Page[Membership]:
    """One page of ``merchant``'s memberships (with their users), filtered and sorted."""
    page = clamp_page(page)
    window = {"merchant_id": merchant.id, "limit": per_page + 1, "offset": (page - 1) * per_page}
    if query and query.strip():
        statement = _list_statement(sort, _search_condition(query, phones.merchant_region(merchant)))
    else:  # the unfiltered list (most visits): its statement is built once per sort
        statement = _unfiltered_list_statement(sort)
    rows = list(session.scalars(statement, window).unique())
    return Page(items=rows[:per_page], page=page, per_page=per_page, has_next=len(rows) > per_page)


def _list_statement(sort: str, condition=None):
    """The list's statement: the merchant's memberships with their users, optionally filtered,
    sorted, one page (merchant, limit and offset are bound at execution)."""
    statement = (
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .options(contains_eager(Membership.user))
        .where(Membership.merchant_id == bindparam("merchant_id"))
    )
    if condition is not None:
        statement = statement.where(condition)
    return (
        statement.order_by(*SORTS.get(sort, SORTS[DEFAULT_SORT]))
        .limit(bindparam("limit")).offset(bindparam("offset"))
    )


@lru_cache(maxsize=len(SORTS) + 1)
def _unfiltered_list_statement(sort: str):
    return _list_statement(sort)


def membership_for(session: Session, merchant: Merchant, membership_id: int) -> Membership | None:
    """The membership ``membership_id`` if it belongs to ``merchant`` (else ``None``: a 404)."""
    return session.scalar(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .options(contains_eager(Membership.user))
        .where(Membership.id == membership_id, Membership.merchant_id == merchant.id)
    )


def customer_purchases(
    session: Session, merchant: Merchant, membership: Membership, page: int = 1,
    per_page: int = PER_PAGE,
) -> Page[Purchase]:
    """One page of a customer's purchases at ``merchant``, newest first."""
    page = clamp_page(page)
    rows = list(
        session.scalars(
            select(Purchase)
            .where(Purchase.merchant_id == merchant.id, Purchase.membership_id == membership.id)
            .order_by(Purchase.created_at.desc(), Purchase.id.desc())
            .limit(per_page + 1)
            .offset((page - 1) * per_page)
        )
    )
    return Page(items=rows[:per_page], page=page, per_page=per_page, has_next=len(rows) > per_page)


def average_check(membership: Membership) -> int:
    """Average bill in minor units (0 before the first visit)."""
    return membership.total_spent // membership.visits if membership.visits else 0
