"""Customer lifetime value and cohort retention from per-card monthly running totals, against a
from-scratch computation over the purchases; month boundaries where the network is; the rebuild."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from tests import kit
from webapp.extensions import db
from webapp.models import CustomerMonthTotals
from webapp.services import analytics
from webapp.services.ledger import rebuild_customer_months
from webapp.services.purchases import refund_purchase
from webapp.timezones import network_zone

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def buy(merchant, membership, amount, when):
    return kit.buy(merchant, membership, amount, when=when)


def month_of(moment, zone) -> date:
    local = moment.astimezone(zone)
    return date(local.year, local.month, 1)


def months_between(first: date, second: date) -> int:
    return (second.year - first.year) * 12 + second.month - first.month


def from_scratch(people, zone, now, months=12):
    """(average lifetime value, {join month: (customers, value, [active per month offset])})."""
    customers = len(people)
    revenue = sum(
        amount for _joined, sales in people for _when, amount, refunded in sales if not refunded
    )
    current = month_of(now, zone)
    table = {}
    for joined, sales in people:
        joined_month = month_of(joined, zone)
        if months_between(joined_month, current) >= months:
            continue
        row = table.setdefault(joined_month, [0, 0, {}])
        row[0] += 1
        for when, amount, refunded in sales:
            if refunded:
                continue
            row[1] += amount
            offset = months_between(joined_month, month_of(when, zone))
            row[2].setdefault(offset, set()).add(id(sales))
    result = {}
    for joined_month, (count, value, active) in table.items():
        span = months_between(joined_month, current) + 1
        result[joined_month] = (
            count,
            value // count,
            [len(active.get(k, ())) for k in range(span)],
        )
    return (revenue // customers if customers else None), result


def test_lifetime_value_and_cohorts_match_a_from_scratch_computation(
    app, make_merchant, make_member
):
    shop = make_merchant()
    shop.network.timezone = "Asia/Almaty"
    db.session.commit()
    zone = network_zone(shop.network)
    chance = random.Random(11)
    people = []
    for _number in range(18):
        member = make_member(shop)
        joined = NOW - timedelta(days=chance.randint(0, 420), hours=chance.randint(0, 23))
        member.joined_at = joined
        db.session.commit()
        sales = []
        for _sale in range(chance.choice([0, 1, 2, 5])):
            when = min(
                joined + timedelta(days=chance.randint(0, 200), hours=chance.randint(0, 23)), NOW
            )
            amount = chance.choice([2_000, 15_000, 70_000])
            purchase = buy(shop, member, amount, when)
            refunded = chance.random() < 0.15
            if refunded:
                refund_purchase(db.session, shop, purchase.id, shop.owner.id)
            sales.append((when, amount, refunded))
        people.append((joined, sales))

    average, table = from_scratch(people, zone, NOW)
    value = analytics.customer_value(shop, db.session, now=NOW)
    assert value.customers == 18 and value.lifetime_value == average
    assert len(value.cohorts) == 12 and value.cohorts[0].join_month == month_of(NOW, zone)
    for cohort in value.cohorts:
        count, cohort_value, active = table.get(cohort.join_month, (0, None, None))
        assert cohort.customers == count, cohort.join_month
        if count:
            assert cohort.lifetime_value == cohort_value, cohort.join_month
            assert [a for a in cohort.active if a is not None] == active, cohort.join_month
            assert cohort.active[len(active) :] == [None] * (12 - len(active))

    # The rebuild (the migration's backfill and the CLI command) writes the same rows.
    def snapshot():
        return sorted(
            db.session.execute(
                select(
                    CustomerMonthTotals.membership_id,
                    CustomerMonthTotals.month,
                    CustomerMonthTotals.join_month,
                    CustomerMonthTotals.purchases,
                    CustomerMonthTotals.revenue,
                ).where(CustomerMonthTotals.purchases != 0)
            ).all()
        )

    live = snapshot()
    assert live
    rebuild_customer_months(db.session)
    assert snapshot() == live
    runner = app.test_cli_runner()
    result = runner.invoke(args=["customer-totals", "--merchant", shop.slug])
    assert result.exit_code == 0 and "card-month rows written" in result.output
    assert snapshot() == live


def test_a_sale_just_after_local_midnight_counts_in_the_new_month(app, make_merchant, make_member):
    """31 October 19:30 UTC is already 1 November in Almaty (UTC+5): the November column."""
    shop = make_merchant()
    shop.network.timezone = "Asia/Almaty"
    db.session.commit()
    member = make_member(shop)
    member.joined_at = datetime(2026, 10, 10, 9, 0, tzinfo=UTC)
    db.session.commit()
    buy(shop, member, 10_000, datetime(2026, 10, 31, 19, 30, tzinfo=UTC))
    row = db.session.scalar(
        select(CustomerMonthTotals).where(CustomerMonthTotals.membership_id == member.id)
    )
    assert (row.month, row.join_month, row.purchases, row.revenue) == (
        date(2026, 11, 1),
        date(2026, 10, 1),
        1,
        10_000,
    )
    value = analytics.customer_value(shop, db.session, now=NOW)
    october = next(c for c in value.cohorts if c.join_month == date(2026, 10, 1))
    assert october.active[:3] == [0, 1, 0] and october.retention[1] == 1.0


def test_the_dashboard_shows_lifetime_value_and_the_cohort_table(
    client, make_merchant, make_member
):
    shop = make_merchant()
    member = make_member(shop)
    buy(shop, member, 12_000, datetime.now(UTC))
    client.login(shop.owner)
    page = client.get(f"/business/{shop.slug}/dashboard").get_data(as_text=True)
    assert "Customer lifetime value" in page and 'class="table cohorts"' in page
    assert "100%" in page
