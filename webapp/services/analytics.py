"""Merchant figures read from per-week running totals, so a dashboard costs the same at any size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.models import Merchant, MerchantWeeklyStats
from webapp.models.base import utcnow
from webapp.services.ledger import week_start

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


def dashboard_figures(merchant: Merchant, session: Session | None = None, today: date | None = None) -> DashboardFigures:
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
    today = today or utcnow().date()
    first_week = week_start(utcnow()) - timedelta(weeks=WEEKS_SHOWN - 1)
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
