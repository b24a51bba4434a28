"""Directory queries: networks, the active merchants customers can find, and join-code lookups."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from webapp.models import Merchant, MerchantPhoto, Network, PriceItem

PER_PAGE = 25
MAX_QUERY_LENGTH = 100
# Crockford's reading rules, so "o" typed from a poster still finds "0".
_CODE_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})


@dataclass(frozen=True)
class NetworkSummary:
    """A network on the start page with how many merchants a customer can join there."""

    network: Network
    merchant_count: int


@dataclass
class DirectoryPage:
    """One page of a network's directory, filtered by category and search text."""

    network: Network
    merchants: list[Merchant]
    total: int
    page: int
    pages: int
    category: str | None
    query: str
    # (category key, number of active merchants) for the tabs, in display order.
    categories: list[tuple[str, int]] = field(default_factory=list)

    @property
    def all_count(self) -> int:
        return sum(count for _key, count in self.categories)


def list_networks(session: Session) -> list[NetworkSummary]:
    """Every network with its number of active merchants, by name."""
    counts = (
        select(Merchant.network_id, func.count(Merchant.id).label("active"))
        .where(Merchant.status == "active")
        .group_by(Merchant.network_id)
        .subquery()
    )
    rows = session.execute(
        select(Network, func.coalesce(counts.c.active, 0))
        .outerjoin(counts, counts.c.network_id == Network.id)
        .order_by(Network.name, Network.id)
    ).all()
    return [NetworkSummary(network, int(count)) for network, count in rows]


def network_by_slug(session: Session, slug: str) -> Network | None:
    return session.scalar(select(Network).where(Network.slug == slug))


def clean_query(text: str | None) -> str:
    """Search text as typed, trimmed and bounded so a pasted essay stays a cheap query."""
    return " ".join((text or "").split())[:MAX_QUERY_LENGTH]


def directory_page(
    session: Session,
    network: Network,
    *,
    category: str | None = None,
    query: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> DirectoryPage:
    """Active merchants of ``network`` (never pending, declined or suspended ones)."""
    query = clean_query(query)
    listed = (Merchant.network_id == network.id, Merchant.status == "active")
    category_rows = session.execute(
        select(Merchant.category, func.count(Merchant.id))
        .where(*listed)
        .group_by(Merchant.category)
        .order_by(Merchant.category)
    ).all()
    categories = [(key, int(count)) for key, count in category_rows]
    if category not in {key for key, _count in categories}:
        category = None

    conditions = list(listed)
    if category:
        conditions.append(Merchant.category == category)
    if query:
        conditions.append(
            or_(
                Merchant.name.icontains(query, autoescape=True),
                Merchant.description.icontains(query, autoescape=True),
                Merchant.address.icontains(query, autoescape=True),
            )
        )
    total = session.scalar(select(func.count(Merchant.id)).where(*conditions)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    merchants = list(
        session.scalars(
            select(Merchant)
            .where(*conditions)
            .options(selectinload(Merchant.photos))
            .order_by(Merchant.category, Merchant.name, Merchant.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    return DirectoryPage(
        network=network,
        merchants=merchants,
        total=total,
        page=page,
        pages=pages,
        category=category,
        query=query,
        categories=categories,
    )


def active_merchant_by_slug(session: Session, slug: str) -> Merchant | None:
    """The merchant behind an e-card; ``None`` unless it is active (others must look missing)."""
    return session.scalar(
        select(Merchant)
        .where(Merchant.slug == slug, Merchant.status == "active")
        .options(selectinload(Merchant.photos))
    )


def normalize_join_code(text: str | None) -> str:
    """A join code as typed from a poster: case, spaces and dashes ignored."""
    return "".join(ch for ch in (text or "").upper() if ch.isalnum())[:12]


def active_merchant_by_join_code(session: Session, code: str | None) -> Merchant | None:
    """The active merchant whose short join code is ``code`` (any case), or ``None``."""
    normalized = normalize_join_code(code)
    if not normalized:
        return None
    candidates = {normalized, normalized.translate(_CODE_ALIASES)}
    return session.scalar(
        select(Merchant)
        .where(Merchant.join_code.in_(candidates), Merchant.status == "active")
        .limit(1)
    )


def photo_by_filename(session: Session, filename: str) -> MerchantPhoto | PriceItem | None:
    """A stored merchant photo or photo of a price item; only names the database knows are served."""
    found = session.scalar(select(MerchantPhoto).where(MerchantPhoto.filename == filename))
    if found is None:
        found = session.scalar(select(PriceItem).where(PriceItem.photo_filename == filename))
    return found
