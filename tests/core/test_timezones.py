"""A network's time zone: local days and weeks in the figures and at the till, local times on pages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.core.test_cashier import sign_in
from webapp.extensions import db
from webapp.models import MerchantWeeklyStats, Network
from webapp.services import analytics
from webapp.services.purchases import PurchaseDraft, record_purchase
from webapp.timezones import day_start, today, zone

ALMATY = zone("Asia/Almaty")  # UTC+5 all year


@pytest.fixture
def almaty_shop(network, make_user, make_merchant, make_member):
    network.timezone = "Asia/Almaty"
    db.session.commit()
    cashier = make_user(name="Carla Cashier")
    merchant = make_merchant(cashback_bp=1000, cashiers=[cashier])
    merchant.cashier = cashier
    merchant.member = make_member(merchant)
    return merchant


def sell(merchant, moment: datetime, amount: int = 10000, key: str | None = None):
    draft = PurchaseDraft(
        membership_id=merchant.member.id, amount=amount, points_to_use=0,
        idempotency_key=key or f"tz-{moment.isoformat()}", created_at=moment,
    )
    return record_purchase(db.session, merchant, merchant.member, draft).purchase


def test_a_late_sunday_evening_in_almaty_counts_in_that_local_week(almaty_shop):
    # Sunday 29 November 2026 23:30 in Almaty is 18:30 UTC the same day; Monday 00:30 in
    # Almaty is still Sunday (19:30) in UTC, yet belongs to the next local week.
    sell(almaty_shop, datetime(2026, 11, 29, 18, 30, tzinfo=UTC), key="sunday")
    sell(almaty_shop, datetime(2026, 11, 29, 19, 30, tzinfo=UTC), key="monday")
    rows = {
        row.week_start: row.purchases
        for row in db.session.scalars(
            select(MerchantWeeklyStats).where(MerchantWeeklyStats.merchant_id == almaty_shop.id)
        )
        if row.purchases  # joining the shop today counts a new customer in today's week
    }
    assert rows == {date(2026, 11, 23): 1, date(2026, 11, 30): 1}


def test_the_dashboard_weeks_end_with_the_local_week_of_today(almaty_shop):
    local_midnight = day_start(today(ALMATY), ALMATY)
    sell(almaty_shop, local_midnight, key="first-of-today")  # UTC still says yesterday
    figures = analytics.dashboard_figures(almaty_shop, db.session)
    local_day = today(ALMATY)
    assert figures.weeks[-1].week_start == local_day - timedelta(days=local_day.weekday())
    assert figures.weeks[-1].purchases == 1


def test_the_till_counts_today_from_local_midnight_and_shows_local_times(client, almaty_shop):
    midnight = day_start(today(ALMATY), ALMATY)
    before = sell(almaty_shop, midnight - timedelta(minutes=30), key="yesterday-23-30")
    after = sell(almaty_shop, midnight + timedelta(seconds=1), key="today-00-00")
    sign_in(client, almaty_shop.cashier)
    page = client.get(f"/business/{almaty_shop.slug}/till").get_data(as_text=True)
    recent = page.split('id="recent"', 1)[1]
    assert f"/purchases/{after.id}\"" in recent
    assert f"/purchases/{before.id}\"" not in recent
    assert re.search(r'class="recent-when">00:00<', recent), "the time is shown in Almaty time"


def test_the_receipt_page_shows_the_time_of_the_street(client, almaty_shop):
    purchase = sell(almaty_shop, datetime(2026, 11, 29, 18, 30, tzinfo=UTC), key="receipt")
    sign_in(client, almaty_shop.cashier)
    page = client.get(f"/business/{almaty_shop.slug}/purchases/{purchase.id}").get_data(as_text=True)
    assert "11:30\u202fPM" in page or "11:30 PM" in page
    assert "6:30" not in page


def test_network_create_takes_a_time_zone_and_refuses_an_unknown_one(app):
    env = {"NEIGHBOURLY_OPERATOR_PASSWORD": "a long operator passphrase"}
    runner = app.test_cli_runner()
    result = runner.invoke(args=["network-create", "Abay Street", "--currency", "KZT",
                                 "--timezone", "asia/almaty", "--operator-email", "op@example.com"], env=env)
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(Network.timezone).where(Network.slug == "abay-street")) == "Asia/Almaty"
    refused = runner.invoke(args=["network-create", "Vitosha", "--currency", "BGN",
                                  "--timezone", "Mars/Olympus", "--operator-email", "op@example.com"], env=env)
    assert refused.exit_code != 0 and "IANA" in refused.output


def test_the_operator_sets_the_zone_and_a_typo_gets_a_message_not_a_500(client, network):
    client.login(network.operator)
    url = f"/operator/{network.slug}/timezone"
    refused = client.post_form(url, {"timezone": "Europe/Sofiya"})
    assert refused.status_code == 422
    assert "IANA" in refused.get_data(as_text=True)
    db.session.refresh(network)
    assert network.timezone == "UTC"
    saved = client.post_form(url, {"timezone": "Europe/Sofia"})
    assert saved.status_code == 303
    db.session.refresh(network)
    assert network.timezone == "Europe/Sofia"
