"""The economics of partnerships: monthly figures, settlements between neighbours and the network's flows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from plugins.cross_marketing.models import CertificateEvent, Partnership
from plugins.cross_marketing.services.partnerships import merchant_partnerships
from webapp.plugin_api import Merchant, utcnow

# --------------------------------------------------------------------------- economics


def _month_expression(session: Session, column):
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


@dataclass
class MonthFigures:
    """One partnership's figures for one month, summed from the certificate events."""

    month: str
    issued: int = 0
    redeemed: int = 0
    expired: int = 0
    voided: int = 0
    revenue: int = 0
    new_customers: int = 0
    value_used: int = 0
    fees: int = 0

    @property
    def cost(self) -> int:
        return self.value_used + self.fees

    @property
    def redemption_rate_pct(self) -> int | None:
        return round(100 * self.redeemed / self.issued) if self.issued else None


@dataclass
class PartnershipEconomics:
    partnership: Partnership
    role: str  # "issuer" or "distributor": what this merchant is in it
    months: list[MonthFigures] = field(default_factory=list)

    @property
    def counterpart(self) -> Merchant:
        return self.partnership.distributor if self.role == "issuer" else self.partnership.offer.issuer

    def total(self) -> MonthFigures:
        total = MonthFigures(month="")
        for month in self.months:
            for name in ("issued", "redeemed", "expired", "voided", "revenue", "new_customers", "value_used", "fees"):
                setattr(total, name, getattr(total, name) + getattr(month, name))
        return total


def month_keys(end: date, count: int) -> list[str]:
    keys = []
    year, month = end.year, end.month
    for _index in range(count):
        keys.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(keys))


def _sums(session: Session, where, group_extra=()):
    month = _month_expression(session, CertificateEvent.created_at)
    return session.execute(
        select(
            CertificateEvent.partnership_id,
            month.label("month"),
            CertificateEvent.kind,
            func.coalesce(func.sum(CertificateEvent.count), 0),
            func.coalesce(func.sum(CertificateEvent.purchase_amount), 0),
            func.coalesce(func.sum(case((CertificateEvent.new_customer.is_(True), CertificateEvent.count), else_=0)), 0),
            func.coalesce(func.sum(CertificateEvent.value_used), 0),
            func.coalesce(func.sum(CertificateEvent.fee), 0),
            *group_extra,
        )
        .where(where)
        .group_by(CertificateEvent.partnership_id, month, CertificateEvent.kind, *group_extra)
    ).all()


def _apply(figures: MonthFigures, kind: str, count: int, revenue: int, new: int, used: int, fees: int) -> None:
    if kind == "issued":
        figures.issued += count
    elif kind in ("redeemed", "restored"):
        figures.redeemed += count
        figures.revenue += revenue
        figures.new_customers += new
        figures.value_used += used
        figures.fees += fees
    elif kind == "expired":
        figures.expired += count
    elif kind == "voided":
        figures.voided += count


def economics(session: Session, merchant: Merchant, months: int = 6, end: date | None = None) -> list[PartnershipEconomics]:
    """Per partnership the merchant is a side of: figures for each of the last ``months`` months."""
    end = end or utcnow().date()
    keys = month_keys(end, months)
    partnerships = [p for p in merchant_partnerships(session, merchant) if p.status != "declined"]
    result = {
        p.id: PartnershipEconomics(
            p, "issuer" if p.offer.issuer_id == merchant.id else "distributor",
            [MonthFigures(key) for key in keys],
        )
        for p in partnerships
    }
    if not result:
        return []
    first = datetime.fromisoformat(keys[0] + "-01").replace(tzinfo=UTC)
    rows = _sums(
        session,
        and_(
            or_(CertificateEvent.issuer_id == merchant.id, CertificateEvent.distributor_id == merchant.id),
            CertificateEvent.created_at >= first,
        ),
    )
    index = {key: position for position, key in enumerate(keys)}
    for partnership_id, month, kind, count, revenue, new, used, fees in rows:
        if partnership_id in result and month in index:
            _apply(result[partnership_id].months[index[month]], kind, count, revenue, new, used, fees)
    return list(result.values())


@dataclass(frozen=True)
class SettlementLine:
    partnership_id: int
    counterpart: str
    role: str  # this merchant's role
    redeemed: int
    value_used: int
    fees: int
    amount: int  # signed, from this merchant's point of view: + receives, - pays


@dataclass(frozen=True)
class Settlement:
    merchant_name: str
    month: str
    currency: str
    lines: list[SettlementLine]

    @property
    def receivable(self) -> int:
        return sum(line.amount for line in self.lines if line.amount > 0)

    @property
    def payable(self) -> int:
        return -sum(line.amount for line in self.lines if line.amount < 0)

    @property
    def net(self) -> int:
        return sum(line.amount for line in self.lines)


def parse_month(text: str | None, default: date | None = None) -> tuple[int, int]:
    default = default or utcnow().date()
    try:
        year_text, month_text = (text or "").split("-")
        year, month = int(year_text), int(month_text)
        if not (2000 <= year <= 2100 and 1 <= month <= 12):
            raise ValueError
    except ValueError:
        return default.year, default.month
    return year, month


def settlement(session: Session, merchant: Merchant, year: int, month: int) -> Settlement:
    """Who owes whom for the month: fees for redeemed certificates (net of refunds)."""
    start = datetime(year, month, 1, tzinfo=UTC)
    stop = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    rows = session.execute(
        select(
            CertificateEvent.partnership_id,
            CertificateEvent.issuer_id,
            CertificateEvent.distributor_id,
            func.coalesce(func.sum(CertificateEvent.count), 0),
            func.coalesce(func.sum(CertificateEvent.value_used), 0),
            func.coalesce(func.sum(CertificateEvent.fee), 0),
        )
        .where(
            or_(CertificateEvent.issuer_id == merchant.id, CertificateEvent.distributor_id == merchant.id),
            CertificateEvent.kind.in_(("redeemed", "restored")),
            CertificateEvent.created_at >= start,
            CertificateEvent.created_at < stop,
        )
        .group_by(CertificateEvent.partnership_id, CertificateEvent.issuer_id, CertificateEvent.distributor_id)
        .order_by(CertificateEvent.partnership_id)
    ).all()
    names = dict(
        session.execute(
            select(Merchant.id, Merchant.name).where(
                Merchant.id.in_({r[1] for r in rows} | {r[2] for r in rows} or {0})
            )
        ).all()
    )
    lines = []
    for partnership_id, issuer_id, distributor_id, count, used, fees in rows:
        is_issuer = issuer_id == merchant.id
        lines.append(SettlementLine(
            partnership_id=partnership_id,
            counterpart=names.get(distributor_id if is_issuer else issuer_id, ""),
            role="issuer" if is_issuer else "distributor",
            redeemed=count, value_used=used, fees=fees,
            amount=-fees if is_issuer else fees,
        ))
    return Settlement(merchant.name, f"{year:04d}-{month:02d}", merchant.network.currency, lines)


@dataclass(frozen=True)
class Flow:
    distributor: str
    issuer: str
    issued: int
    redeemed: int
    new_customers: int


def network_flows(session: Session, network_id: int) -> list[Flow]:
    """Who sent customers to whom in a network: certificates issued and redeemed per pair."""
    rows = session.execute(
        select(
            CertificateEvent.distributor_id,
            CertificateEvent.issuer_id,
            func.coalesce(func.sum(case((CertificateEvent.kind == "issued", CertificateEvent.count), else_=0)), 0),
            func.coalesce(func.sum(case((CertificateEvent.kind.in_(("redeemed", "restored")), CertificateEvent.count), else_=0)), 0),
            func.coalesce(func.sum(case(
                (and_(CertificateEvent.kind.in_(("redeemed", "restored")), CertificateEvent.new_customer.is_(True)), CertificateEvent.count),
                else_=0,
            )), 0),
        )
        .join(Merchant, Merchant.id == CertificateEvent.issuer_id)
        .where(Merchant.network_id == network_id)
        .group_by(CertificateEvent.distributor_id, CertificateEvent.issuer_id)
    ).all()
    names = dict(session.execute(select(Merchant.id, Merchant.name).where(Merchant.network_id == network_id)).all())
    flows = [Flow(names.get(d, ""), names.get(i, ""), issued, redeemed, new) for d, i, issued, redeemed, new in rows]
    return sorted(flows, key=lambda flow: (-flow.redeemed, -flow.issued, flow.distributor, flow.issuer))
