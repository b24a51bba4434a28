"""A status level as a segment condition: offered by gamification through the core's segment hooks
(no plugin imports the other), one SQL statement, and the same people the customer facts name."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from plugins.offers import services
from tests.kit import disable_plugins, enable_plugins
from webapp.extensions import db
from webapp.plugins import hooks_for


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.gamification", "plugins.offers"]}


def test_a_level_condition_picks_the_members_the_customer_facts_name(shop, make_member):
    from plugins.gamification.models import Level, Status

    enable_plugins(shop, "gamification")
    members = [make_member(shop) for _ in range(7)]
    # Statuses as gamification keeps them: position from the data, held_position kept by policy.
    for member, (position, held) in zip(
        members, [(0, 0), (1, 0), (1, 2), (2, 0), (3, 3), (0, 1)], strict=False
    ):
        db.session.add(
            Status(
                merchant_id=shop.id, membership_id=member.id, position=position, held_position=held
            )
        )
    db.session.commit()  # the seventh member has no status row yet: the entry level

    conditions = services.segment_conditions(shop, db.session)
    assert [c.key for c in conditions] == ["gamification:level"]
    levels = db.session.execute(
        select(Level.position, Level.name)
        .where(Level.merchant_id == shop.id)
        .order_by(Level.position)
    ).all()
    assert conditions[0].choices == tuple((str(position), name) for position, name in levels)

    hooks = hooks_for(shop)

    def level_fact(member):
        facts = [
            fact
            for found in hooks.neighbourly_collect_customer_facts(
                merchant=shop, membership=member, purchase=None
            )
            for fact in (found or [])
            if fact.key == "status"
        ]
        return facts[0].value if facts else levels[0].name

    for position, name in levels:
        criteria, errors = services.parse_criteria(
            {"c.gamification:level": str(position)}, "KZT", conditions
        )
        assert not errors
        found = [card for card, _user in services.segment_members(db.session, shop, criteria)]
        assert found == sorted(m.id for m in members if level_fact(m) == name), name

    _criteria, errors = services.parse_criteria({"c.gamification:level": "99"}, "KZT", conditions)
    assert errors == {"c.gamification:level": "Choose one of the options."}

    # Switched off, gamification offers nothing, and a stored level condition matches nobody.
    criteria, _errors = services.parse_criteria({"c.gamification:level": "1"}, "KZT", conditions)
    disable_plugins(shop, "gamification")
    assert services.segment_conditions(shop, db.session) == []
    assert services.segment_members(db.session, shop, criteria) == []
    enable_plugins(shop, "offers")
