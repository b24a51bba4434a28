"""Segments: the one-query SQL segment agrees with a from-scratch Python filter (Hypothesis)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from plugins.offers import services
from tests.plugins.offers.conftest import buy
from webapp.extensions import db
from webapp.services.purchases import refund_purchase
from webapp.timezones import day_start, network_zone, today

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@dataclass
class Person:
    membership_id: int
    joined_at: datetime
    birth_month: int | None
    sales: list[tuple[datetime, int, bool]] = field(
        default_factory=list
    )  # (when, amount, refunded)
    bought: list[tuple[datetime, int, bool]] = field(default_factory=list)  # (when, item id, refunded)
    left: bool = False


@pytest.fixture
def menu(shop):
    """Three price-list items; sales pick some of them (or none: an amount typed in)."""
    from webapp.services import price_items

    price_items.add_items(db.session, shop, [
        price_items.ItemRow(None, name, price)
        for name, price in (("Latte", 1_000), ("Cake", 25_000), ("Beans", 100_000))
    ], "en")
    db.session.commit()
    return [item.id for item in price_items.items_of(db.session, shop)]


@pytest.fixture
def population(shop, make_member, make_user, menu):
    """Fifteen members with a seeded random history: sales over 200 days, some refunded, some of
    price-list items, birthdays."""
    chance = random.Random(15)
    people = []
    for number in range(15):
        user = make_user(birth_month=chance.choice([None, 1, 6, 11]), birth_day=1)
        member = make_member(shop, user)
        joined = NOW - timedelta(days=chance.randint(1, 300), hours=chance.randint(0, 23))
        member.joined_at = joined
        db.session.commit()
        person = Person(member.id, joined, user.birth_month)
        for _sale in range(chance.choice([0, 0, 1, 2, 4])):
            when = NOW - timedelta(days=chance.randint(0, 200), minutes=chance.randint(0, 1400))
            when = max(when, joined + timedelta(minutes=1))
            amount = chance.choice([1_000, 25_000, 100_000, 450_000])
            picked = chance.sample(menu, chance.choice([0, 0, 1, 2]))
            purchase = buy(shop, member, amount, when, picks=[(item, chance.randint(1, 3)) for item in picked])
            refunded = chance.random() < 0.2
            if refunded:
                refund_purchase(db.session, shop, purchase.id, shop.owner.id)
            person.sales.append((when, purchase.amount, refunded))
            person.bought.extend((when, item, refunded) for item in picked)
        if number == 14:  # a member who left is in no segment
            member.left_at = NOW - timedelta(days=1)
            db.session.commit()
            person.left = True
        people.append(person)
    return people


def python_filter(people, criteria: services.Criteria, zone, now) -> list[int]:
    """Who the segment should hold, written from the definitions, without SQL."""
    local_today = today(zone, now)
    chosen = []
    for person in people:
        if person.left:
            continue
        last_visit = max((when for when, _a, _r in person.sales), default=None)
        if criteria.idle_days is not None:
            cutoff = day_start(local_today - timedelta(days=criteria.idle_days), zone)
            if (last_visit or person.joined_at) >= cutoff:
                continue
        if criteria.uses_period:
            start = day_start(local_today - timedelta(days=criteria.period_days), zone)
            counted = [
                amount for when, amount, refunded in person.sales if when >= start and not refunded
            ]
            visits, spend = len(counted), sum(counted)
            if criteria.min_visits is not None and visits < criteria.min_visits:
                continue
            if criteria.max_visits is not None and visits > criteria.max_visits:
                continue
            if criteria.min_spend is not None and spend < criteria.min_spend:
                continue
            if criteria.max_spend is not None and spend > criteria.max_spend:
                continue
        if criteria.birthday_month is not None and person.birth_month != criteria.birthday_month:
            continue
        if criteria.item_id is not None:
            since = day_start(local_today - timedelta(days=criteria.item_days), zone)
            if not any(
                item == criteria.item_id and when >= since and not refunded
                for when, item, refunded in person.bought
            ):
                continue
        chosen.append(person.membership_id)
    return sorted(chosen)


optional_days = st.one_of(st.none(), st.sampled_from([1, 7, 30, 60, 90, 180, 365]))
optional_visits = st.one_of(st.none(), st.integers(0, 4))
optional_spend = st.one_of(st.none(), st.sampled_from([0, 1_000, 26_000, 100_000, 500_000]))


@st.composite
def criteria_strategy(draw, menu):
    item = draw(st.one_of(st.none(), st.sampled_from(menu)))
    criteria = services.Criteria(
        item_id=item,
        item_days=None if item is None else draw(st.sampled_from([1, 7, 30, 90, 365])),
        idle_days=draw(optional_days),
        period_days=draw(st.sampled_from([7, 30, 90, 365])),
        min_visits=draw(optional_visits),
        max_visits=draw(optional_visits),
        min_spend=draw(optional_spend),
        max_spend=draw(optional_spend),
        birthday_month=draw(st.one_of(st.none(), st.sampled_from([1, 6, 11, 12]))),
    )
    return criteria


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), hours=st.integers(-30, 30))
def test_the_segment_query_agrees_with_a_python_filter(shop, population, menu, data, hours):
    criteria = data.draw(criteria_strategy(menu))
    now = NOW + timedelta(hours=hours)
    expected = python_filter(population, criteria, network_zone(shop.network), now)
    members = services.segment_members(db.session, shop, criteria, now)
    assert [card for card, _user in members] == expected
    assert services.segment_size(db.session, shop, criteria, now) == len(expected)


def population_item():
    from webapp.models import PriceItem

    return db.session.scalar(select(PriceItem.id).order_by(PriceItem.id))


def test_a_segment_is_one_statement_whatever_its_size(app, shop, population):
    criteria = services.Criteria(
        idle_days=30, period_days=365, min_visits=1, min_spend=1_000, birthday_month=6,
        item_id=population_item(), item_days=90,
    )
    services.segment_size(db.session, shop, criteria, NOW)  # the merchant's network is loaded once
    statements = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        services.segment_size(db.session, shop, criteria, NOW)
        services.segment_members(db.session, shop, criteria, NOW)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 2, statements


def test_a_segment_never_reaches_another_merchants_members(shop, make_merchant, make_member):
    other = make_merchant()
    make_member(other)
    mine = make_member(shop)
    found = services.segment_members(db.session, shop, services.Criteria(), NOW)
    assert [card for card, _user in found] == [mine.id]


def test_idle_days_follow_the_networks_midnight(shop, make_member):
    """A visit just after local midnight 60 days ago is not "more than 60 days ago"; one just
    before it is, though both are the same UTC calendar day in Almaty's UTC+5."""
    shop.network.timezone = "Asia/Almaty"
    db.session.commit()
    zone = network_zone(shop.network)
    local_midnight = day_start(today(zone, NOW) - timedelta(days=60), zone)
    before, after = make_member(shop), make_member(shop)
    for member in (before, after):
        member.joined_at = local_midnight - timedelta(days=5)
    db.session.commit()
    buy(shop, before, 5_000, local_midnight - timedelta(minutes=1))
    buy(shop, after, 5_000, local_midnight + timedelta(minutes=1))
    assert (local_midnight - timedelta(minutes=1)).date() == (
        local_midnight + timedelta(minutes=1)
    ).date()
    found = services.segment_members(db.session, shop, services.Criteria(idle_days=60), NOW)
    assert [card for card, _user in found] == [before.id]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"idle_days": "0"}, "idle_days"),
        ({"idle_days": "ten"}, "idle_days"),
        ({"min_visits": "3"}, "period_days"),
        ({"period_days": "30", "min_visits": "5", "max_visits": "2"}, "max_visits"),
        ({"period_days": "30", "min_spend": "12 tenge"}, "min_spend"),
        ({"period_days": "30", "min_spend": "-5"}, "min_spend"),
        ({"birthday_month": "13"}, "birthday_month"),
        ({"item_id": "999", "item_days": "30"}, "item_id"),  # not one of this merchant's items
        ({"item_id": "7"}, "item_days"),
        ({"item_id": "7", "item_days": "0"}, "item_days"),
    ],
)
def test_bad_conditions_are_named(app, form, field):
    with app.test_request_context():
        _criteria, errors = services.parse_criteria(form, "KZT", items=[(7, "Latte")])
    assert field in errors and errors[field]


def test_an_item_condition_names_only_this_merchants_buyers_of_it(shop, make_merchant, make_member, menu):
    """Bought the latte within 30 days: the buyer in; a refunded latte, an older one, another
    item, and the same-named item bought at another shop are out."""
    from webapp.services import price_items

    latte, cake, _beans = menu
    other = make_merchant()
    price_items.add_items(db.session, other, [price_items.ItemRow(None, "Latte", 1_000)], "en")
    db.session.commit()
    their_latte = price_items.items_of(db.session, other)[0].id
    buyer, refunded, old, cake_eater = (make_member(shop) for _number in range(4))
    elsewhere = make_member(other, user=buyer.user)
    for member in (buyer, refunded, old, cake_eater):
        member.joined_at = NOW - timedelta(days=100)
    db.session.commit()
    buy(shop, buyer, when=NOW - timedelta(days=3), picks=[(latte, 2), (cake, 1)])
    sale = buy(shop, refunded, when=NOW - timedelta(days=3), picks=[(latte, 1)])
    refund_purchase(db.session, shop, sale.id, shop.owner.id)
    buy(shop, old, when=NOW - timedelta(days=45), picks=[(latte, 1)])
    buy(shop, cake_eater, when=NOW - timedelta(days=3), picks=[(cake, 1)])
    buy(other, elsewhere, when=NOW - timedelta(days=3), picks=[(their_latte, 1)])
    found = services.segment_members(db.session, shop, services.Criteria(item_id=latte, item_days=30), NOW)
    assert [card for card, _user in found] == [buyer.id]
    longer = services.segment_members(db.session, shop, services.Criteria(item_id=latte, item_days=60), NOW)
    assert [card for card, _user in longer] == sorted([buyer.id, old.id])
