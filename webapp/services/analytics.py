"""Merchant figures read from per-week running totals, so a dashboard costs the same at any size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from sqlalchemy import bindparam, case, func, select
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


@lru_cache(maxsize=1)
def _dashboard_statement():
    """The merchant's last weeks and, in a row of its own (no week), its totals over every week:
    one statement, built once (the dashboard ran two, each built anew)."""
    from sqlalchemy import Date, literal, union_all

    stats = MerchantWeeklyStats.__table__.c
    merchant_id = bindparam("merchant_id")
    weeks = select(
        stats.week_start, stats.new_customers, stats.repeat_customers, stats.purchases - stats.refunds,
        stats.revenue, stats.points_earned, stats.points_redeemed, stats.points_other,
    ).where(stats.merchant_id == merchant_id, stats.week_start >= bindparam("first_week"))
    totals = select(
        literal(None, Date),
        func.coalesce(func.sum(stats.new_customers), 0),
        func.coalesce(func.sum(stats.repeat_customers), 0),
        func.coalesce(func.sum(stats.purchases - stats.refunds), 0),
        func.coalesce(func.sum(stats.revenue), 0),
        func.coalesce(func.sum(stats.points_earned), 0),
        func.coalesce(func.sum(stats.points_redeemed), 0),
        func.coalesce(func.sum(stats.points_other), 0),
    ).where(stats.merchant_id == merchant_id)
    return union_all(weeks, totals)


def dashboard_figures(merchant: Merchant, session: Session | None = None) -> DashboardFigures:
    """Totals and the last weeks, from one query over bounded per-week rows."""
    session = session or db.session
    # Weeks run Monday to Sunday where the street is, as the weekly rows were counted.
    first_week = week_start(utcnow(), network_zone(merchant.network)) - timedelta(weeks=WEEKS_SHOWN - 1)
    rows = {}
    totals = None
    for row in session.execute(_dashboard_statement(), {"merchant_id": merchant.id, "first_week": first_week}):
        if row[0] is None:
            totals = row[1:]
        else:
            rows[row[0]] = row
    weeks = []
    for index in range(WEEKS_SHOWN):
        start = first_week + timedelta(weeks=index)
        row = rows.get(start)
        weeks.append(
            WeekFigures(
                week_start=start,
                purchases=row[3] if row else 0,
                revenue=row[4] if row else 0,
                new_customers=row[1] if row else 0,
                points_earned=row[5] if row else 0,
                points_redeemed=row[6] if row else 0,
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


# --------------------------------------------------------------------------- lifetime value and cohorts

COHORT_MONTHS = 12


@dataclass(frozen=True)
class Cohort:
    """Customers who joined in one local month: their value and the share active each month after."""

    join_month: date
    customers: int
    revenue: int
    active: list[int | None]  # customers with a purchase in month k after joining (None: not yet)

    @property
    def lifetime_value(self) -> int | None:
        return self.revenue // self.customers if self.customers else None

    @property
    def retention(self) -> list[float | None]:
        return [
            None if count is None or not self.customers else count / self.customers
            for count in self.active
        ]


@dataclass(frozen=True)
class CustomerValue:
    customers: int
    revenue: int
    cohorts: list[Cohort]  # newest join month first

    @property
    def lifetime_value(self) -> int | None:
        """Average revenue per customer so far (net of refunds), minor units."""
        return self.revenue // self.customers if self.customers else None


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_of_index(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


@lru_cache(maxsize=8)
def _customer_value_statements(months: int):
    """The customer value's statements, built once per number of months (building a select with
    many branches cost more Python than running it): members counted by local join month (bucket
    -1: joined before the window; their sum is every member) with the revenue so far, in one
    row, and the activity of the window's cohorts month by month."""
    from webapp.models import CustomerMonthTotals as totals
    from webapp.models import Membership

    merchant_id = bindparam("merchant_id")
    bounds = [bindparam(f"bound_{index}") for index in range(months)]
    revenue = select(func.coalesce(func.sum(totals.revenue), 0)).where(totals.merchant_id == merchant_id)

    def joined(*conditions):
        return (
            select(func.count()).select_from(Membership)
            .where(Membership.merchant_id == merchant_id, *conditions).scalar_subquery()
        )

    # One count a month, each a range of the (merchant, joined_at) index: a CASE over every
    # member, grouped, took four times as long on SQLite (1.2 -> 0.3 ms; PostgreSQL the same).
    sizes = select(
        joined(Membership.joined_at < bounds[0]),
        *[joined(Membership.joined_at >= bounds[i], Membership.joined_at < bounds[i + 1]) for i in range(months - 1)],
        joined(Membership.joined_at >= bounds[months - 1]),
        revenue.scalar_subquery(),
    )
    activity = (
        select(
            totals.join_month,
            totals.month,
            func.sum(case((totals.purchases > 0, 1), else_=0)),
            func.sum(totals.revenue),
        )
        .where(totals.merchant_id == merchant_id, totals.join_month >= bindparam("first_month"))
        .group_by(totals.join_month, totals.month)
    )
    return sizes, activity


def customer_value(
    merchant: Merchant, session: Session | None = None, now=None, months: int = COHORT_MONTHS
) -> CustomerValue:
    """Lifetime value (overall and by join month) and cohort retention for the last ``months``
    join months, from the per-card monthly running totals and the members' join dates: two
    statements whose cost grows with customers and months, never with purchases."""
    from webapp.timezones import month_start

    session = session or db.session
    now = now or utcnow()
    zone = network_zone(merchant.network)
    sizes_statement, activity_statement = _customer_value_statements(months)
    # Members per local join month: bounds computed here, counted by one CASE over the join date.
    bounds = [month_start(now, zone, back) for back in range(months - 1, -1, -1)]
    *counts, revenue = session.execute(
        sizes_statement,
        {"merchant_id": merchant.id, **{f"bound_{index}": bound for index, bound in enumerate(bounds)}},
    ).one()
    sizes = dict(enumerate(counts, start=-1))
    customers = sum(sizes.values())
    revenue = revenue or 0
    first = _month_index(local_month_of(bounds[0], zone))
    current = _month_index(local_month_of(now, zone))
    activity: dict[tuple[date, date], tuple[int, int]] = {}
    for join_month, month, active, month_revenue in session.execute(
        activity_statement, {"merchant_id": merchant.id, "first_month": _month_of_index(first)}
    ).all():
        activity[(join_month, month)] = (int(active or 0), int(month_revenue or 0))
    cohorts = []
    for index in range(months - 1, -1, -1):
        joined = _month_of_index(first + index)
        size = int(sizes.get(index, 0))
        active_counts: list[int | None] = []
        cohort_revenue = 0
        for offset in range(months):
            month_index = first + index + offset
            if month_index > current:
                active_counts.append(None)
                continue
            active, month_revenue = activity.get((joined, _month_of_index(month_index)), (0, 0))
            active_counts.append(active)
            cohort_revenue += month_revenue
        cohorts.append(Cohort(joined, size, cohort_revenue, active_counts))
    return CustomerValue(customers=int(customers), revenue=int(revenue), cohorts=cohorts)


def local_month_of(moment, zone) -> date:
    local = moment.astimezone(zone)
    return date(local.year, local.month, 1)
