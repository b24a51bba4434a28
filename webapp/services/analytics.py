"""Merchant figures read from per-week running totals, so a dashboard costs the same at any size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.models import Merchant, MerchantWeeklyStats, Network
from webapp.models.base import utcnow
from webapp.models.network import MERCHANT_STATUSES
from webapp.services.ledger import week_start
from webapp.timezones import network_zone

WEEKS_SHOWN = 12


@dataclass(frozen=True)
class WeekFigures:
    week_start: date
    purchases: int
    revenue: int
    new_customers: int
    points_earned: int
    points_redeemed: int


@dataclass(frozen=True)
class DashboardFigures:
    customers: int
    repeat_customers: int
    purchases: int
    revenue: int
    points_issued: int
    points_redeemed: int
    points_outstanding: int
    weeks: list[WeekFigures]

    @property
    def repeat_rate(self) -> float:
        return self.repeat_customers / self.customers if self.customers else 0.0

    @property
    def average_check(self) -> int:
        return self.revenue // self.purchases if self.purchases else 0


def dashboard_figures(merchant: Merchant, session: Session | None = None) -> DashboardFigures:
    """Totals and the last weeks, from at most two queries over bounded per-week rows."""
    session = session or db.session
    stats = MerchantWeeklyStats
    totals = session.execute(
        select(
            func.coalesce(func.sum(stats.new_customers), 0),
            func.coalesce(func.sum(stats.repeat_customers), 0),
            func.coalesce(func.sum(stats.purchases - stats.refunds), 0),
            func.coalesce(func.sum(stats.revenue), 0),
            func.coalesce(func.sum(stats.points_earned), 0),
            func.coalesce(func.sum(stats.points_redeemed), 0),
            func.coalesce(func.sum(stats.points_other), 0),
        ).where(stats.merchant_id == merchant.id)
    ).one()
    # Weeks run Monday to Sunday where the street is, as the weekly rows were counted.
    first_week = week_start(utcnow(), network_zone(merchant.network)) - timedelta(weeks=WEEKS_SHOWN - 1)
    rows = {
        row.week_start: row
        for row in session.scalars(
            select(stats).where(stats.merchant_id == merchant.id, stats.week_start >= first_week)
        )
    }
    weeks = []
    for index in range(WEEKS_SHOWN):
        start = first_week + timedelta(weeks=index)
        row = rows.get(start)
        weeks.append(
            WeekFigures(
                week_start=start,
                purchases=(row.purchases - row.refunds) if row else 0,
                revenue=row.revenue if row else 0,
                new_customers=row.new_customers if row else 0,
                points_earned=row.points_earned if row else 0,
                points_redeemed=row.points_redeemed if row else 0,
            )
        )
    customers, repeat, purchases, revenue, earned, redeemed, other = (int(v) for v in totals)
    return DashboardFigures(
        customers=customers,
        repeat_customers=repeat,
        purchases=purchases,
        revenue=revenue,
        points_issued=earned + max(other, 0),
        points_redeemed=redeemed,
        points_outstanding=earned - redeemed + other,
        weeks=weeks,
    )


@dataclass(frozen=True)
class NetworkFigures:
    """A network's health for its operator, summed from per-merchant weekly rows."""

    merchants_by_status: dict[str, int]
    customer_cards: int
    purchases: int
    revenue: int
    points_outstanding: int
    weeks: list[WeekFigures]

    @property
    def merchants(self) -> int:
        return sum(self.merchants_by_status.values())


def network_figures(network: Network, session: Session | None = None) -> NetworkFigures:
    """Three grouped queries over merchants and weekly rows; purchases are never scanned."""
    session = session or db.session
    stats = MerchantWeeklyStats
    by_status = {status: 0 for status in MERCHANT_STATUSES}
    for status, count in session.execute(
        select(Merchant.status, func.count(Merchant.id))
        .where(Merchant.network_id == network.id)
        .group_by(Merchant.status)
    ):
        by_status[status] = int(count)
    in_network = select(Merchant.id).where(Merchant.network_id == network.id).scalar_subquery()
    totals = session.execute(
        select(
            func.coalesce(func.sum(stats.new_customers), 0),
            func.coalesce(func.sum(stats.purchases - stats.refunds), 0),
            func.coalesce(func.sum(stats.revenue), 0),
            func.coalesce(func.sum(stats.points_earned - stats.points_redeemed + stats.points_other), 0),
        ).where(stats.merchant_id.in_(in_network))
    ).one()
    first_week = week_start(utcnow(), network_zone(network)) - timedelta(weeks=WEEKS_SHOWN - 1)
    per_week = {
        row.week_start: row
        for row in session.execute(
            select(
                stats.week_start,
                func.sum(stats.purchases - stats.refunds).label("purchases"),
                func.sum(stats.revenue).label("revenue"),
                func.sum(stats.new_customers).label("new_customers"),
                func.sum(stats.points_earned).label("points_earned"),
                func.sum(stats.points_redeemed).label("points_redeemed"),
            )
            .where(stats.merchant_id.in_(in_network), stats.week_start >= first_week)
            .group_by(stats.week_start)
        )
    }
    weeks = []
    for index in range(WEEKS_SHOWN):
        start = first_week + timedelta(weeks=index)
        row = per_week.get(start)
        weeks.append(
            WeekFigures(
                week_start=start,
                purchases=int(row.purchases or 0) if row else 0,
                revenue=int(row.revenue or 0) if row else 0,
                new_customers=int(row.new_customers or 0) if row else 0,
                points_earned=int(row.points_earned or 0) if row else 0,
                points_redeemed=int(row.points_redeemed or 0) if row else 0,
            )
        )
    cards, purchases, revenue, outstanding = (int(value) for value in totals)
    return NetworkFigures(
        merchants_by_status=by_status,
        customer_cards=cards,
        purchases=purchases,
        revenue=revenue,
        points_outstanding=outstanding,
        weeks=weeks,
    )
