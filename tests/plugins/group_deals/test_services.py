"""Deals on SQLite and PostgreSQL: validation in words, frozen tiers, joining, leaving, closing
(checked with Hypothesis against a model written from scratch), e-mails and the deal.closed event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from plugins.group_deals import services
from plugins.group_deals.models import Deal, Pledge, Voucher
from tests.plugins.group_deals.conftest import AFTER, DEADLINE, NOW, make_deal
from webapp.errors import Conflict, ValidationFailed
from webapp.extensions import db
from webapp.timezones import zone

UTC_ZONE = zone("UTC")


def form(**changes) -> dict[str, str]:
    base = {
        "title": "Sourdough box", "description": "", "regular_price": "100",
        "tier1_participants": "3", "tier1_price": "90", "tier2_participants": "5", "tier2_price": "80",
        "max_quantity": "2", "redeem_days": "14",
        "deadline": (NOW + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
    }
    base.update(changes)
    return base


def errors_of(data: dict) -> dict:
    with pytest.raises(ValidationFailed) as caught:
        services.clean_deal(data, "KZT", UTC_ZONE, NOW)
    return caught.value.details["errors"]


def test_a_valid_form_gives_minor_units_and_local_deadline(app):
    data = services.clean_deal(form(), "KZT", UTC_ZONE, NOW)
    assert data.regular_price == 10000
    assert data.tiers == (services.TierStep(3, 9000), services.TierStep(5, 8000))
    assert data.deadline > NOW


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"tier2_price": "95"}, "tier2", "must be lower than the one before"),
    ({"tier2_participants": "2"}, "tier2", "more people than the one before"),
    ({"tier1_price": "120"}, "tier1", "not below the regular price"),
    ({"deadline": (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}, "deadline", "in the past"),
    ({"tier2_participants": "", "tier2_price": ""}, "tiers", "two to five"),
    ({"title": ""}, "title", "title"),
    ({"regular_price": "abc"}, "regular_price", "number"),
    ({"max_participants": "4"}, "max_participants", "could never be reached"),
    ({"max_quantity": "0"}, "max_quantity", "from 1 to"),
    ({"tier1_participants": "³"}, "tier1", "whole number"),
])
def test_every_mistake_is_explained_in_words(app, changes, field, words):
    errors = errors_of(form(**changes))
    assert field in errors and words in errors[field], errors


def test_drafts_change_and_published_tiers_are_frozen(shop):
    deal = make_deal(shop, publish=False)
    changed = services.clean_deal(form(tier1_participants="2"), "KZT", UTC_ZONE, NOW)
    services.update_draft(db.session, shop, deal.id, changed)
    db.session.expire_all()
    assert [(t.position, t.participants) for t in db.session.get(Deal, deal.id).tiers] == [(1, 2), (2, 5)]
    services.publish(db.session, shop, deal.id, NOW)
    with pytest.raises(Conflict, match="can no longer change"):
        services.update_draft(db.session, shop, deal.id, changed)
    with pytest.raises(Conflict, match="already published"):
        services.publish(db.session, shop, deal.id, NOW)


def test_joining_is_idempotent_and_checks_everything(shop, make_member, make_user, make_merchant):
    deal = make_deal(shop, max_participants=None, max_quantity=2)
    member = make_member(shop)
    first = services.join(db.session, shop, deal.id, member.user_id, "1", "current", NOW)
    again = services.join(db.session, shop, deal.id, member.user_id, "1", "current", NOW)
    assert first.id == again.id and db.session.get(Deal, deal.id).participants == 1
    for quantity, words in (("0", "at least 1"), ("-2", "at least 1"), ("3", "At most 2"), ("x", "whole number"),
                            ("²", "whole number")):
        with pytest.raises(ValidationFailed, match=words):
            services.join(db.session, shop, deal.id, make_member(shop).user_id, quantity, "current", NOW)
    with pytest.raises(Conflict, match="Get the card"):
        services.join(db.session, shop, deal.id, make_user().id, "1", "current", NOW)
    with pytest.raises(Conflict, match="deadline has passed"):
        services.join(db.session, shop, deal.id, make_member(shop).user_id, "1", "current", AFTER)
    draft = make_deal(shop, publish=False)
    with pytest.raises(services.NotFound):
        services.join(db.session, shop, draft.id, member.user_id, "1", "current", NOW)
    other = make_merchant()
    with pytest.raises(services.NotFound):
        services.join(db.session, other, deal.id, member.user_id, "1", "current", NOW)
    db.session.expire_all()
    assert db.session.get(Deal, deal.id).participants == 1
    assert len(db.session.scalars(select(Pledge).where(Pledge.deal_id == deal.id)).all()) == 1


def test_a_full_deal_refuses_and_leaving_frees_a_place(shop, make_member):
    deal = make_deal(shop, tiers=((1, 9000), (2, 8000)), max_participants=2)
    a, b, c = (make_member(shop) for _ in range(3))
    services.join(db.session, shop, deal.id, a.user_id, 1, "current", NOW)
    services.join(db.session, shop, deal.id, b.user_id, 1, "best", NOW)
    with pytest.raises(Conflict, match="full"):
        services.join(db.session, shop, deal.id, c.user_id, 1, "current", NOW)
    services.leave(db.session, shop, deal.id, a.user_id, NOW)
    services.leave(db.session, shop, deal.id, a.user_id, NOW)  # a second click changes nothing
    services.join(db.session, shop, deal.id, c.user_id, 1, "current", NOW)
    db.session.expire_all()
    assert db.session.get(Deal, deal.id).participants == 2
    with pytest.raises(Conflict, match="can no longer be left"):
        services.leave(db.session, shop, deal.id, b.user_id, AFTER)


# --------------------------------------------------------------------------- the model


def model_outcome(tiers, actions, max_participants):
    """From scratch: who is in at the deadline, the price they reached, who gets a voucher."""
    inside: dict[int, tuple[str, int]] = {}
    for user, verb, kind, quantity in actions:
        if verb == "leave":
            inside.pop(user, None)
        elif user in inside or max_participants is None or len(inside) < max_participants:
            inside[user] = (kind, quantity)
    count = len(inside)
    prices = [price for people, price in tiers if people <= count]
    if not prices:
        return "cancelled", None, {}, set(inside)
    final = min(prices)
    best_reached = final == min(price for _people, price in tiers)
    vouchers = {user: (final, quantity) for user, (kind, quantity) in inside.items()
                if kind == "current" or best_reached}
    return "closed", final, vouchers, set(inside) - set(vouchers)


@st.composite
def tier_lists(draw):
    count = draw(st.integers(2, 4))
    people = sorted(draw(st.sets(st.integers(1, 6), min_size=count, max_size=count)))
    prices = sorted(draw(st.sets(st.integers(1, 99), min_size=count, max_size=count)), reverse=True)
    return [(p, price * 100) for p, price in zip(people, prices, strict=True)]


ACTIONS = st.lists(
    st.tuples(st.integers(0, 6), st.sampled_from(["join", "leave"]), st.sampled_from(["current", "best"]),
              st.integers(1, 2)),
    max_size=18,
)


@pytest.fixture
def members(shop, make_member):
    return [make_member(shop) for _ in range(7)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tiers=tier_lists(), actions=ACTIONS, max_participants=st.one_of(st.none(), st.integers(1, 6)))
def test_closing_agrees_with_the_model(shop, members, tiers, actions, max_participants):
    deal = make_deal(shop, tiers=tiers, max_participants=max_participants, max_quantity=2)
    user_of = [m.user_id for m in members]
    for user, verb, kind, quantity in actions:
        try:
            if verb == "join":
                services.join(db.session, shop, deal.id, user_of[user], quantity, kind, NOW)
            else:
                services.leave(db.session, shop, deal.id, user_of[user], NOW)
        except Conflict:
            db.session.rollback()
    status, price, vouchers, released = model_outcome(tiers, actions, max_participants)

    assert services.close_deal(db.session, deal.id, AFTER) == status
    assert services.close_deal(db.session, deal.id, AFTER) is None  # a rerun does nothing
    db.session.expire_all()
    closed = db.session.get(Deal, deal.id)
    assert (closed.status, closed.final_price) == (status, price)
    issued = {v.user_id: (v.price, v.quantity) for v in
              db.session.scalars(select(Voucher).where(Voucher.deal_id == deal.id))}
    assert issued == {user_of[user]: value for user, value in vouchers.items()}
    out = set(db.session.scalars(select(Pledge.user_id).where(Pledge.deal_id == deal.id, Pledge.status == "released")))
    assert out == {user_of[user] for user in released}


# --------------------------------------------------------------------------- closing


def test_closing_mails_everyone_and_records_the_event(app, shop, make_member, monkeypatch):
    from webapp import outbox

    events = []
    original = outbox.record_event
    monkeypatch.setattr(outbox, "record_event", lambda session, merchant, name, data: (
        events.append((name, data)), original(session, merchant, name, data)))
    deal = make_deal(shop, tiers=((2, 9000), (3, 8000)))
    winners = [make_member(shop) for _ in range(2)]
    loser = make_member(shop)
    for member in winners:
        services.join(db.session, shop, deal.id, member.user_id, 1, "current", NOW)
    services.join(db.session, shop, deal.id, loser.user_id, 1, "best", NOW)
    leaver = make_member(shop)
    services.join(db.session, shop, deal.id, leaver.user_id, 1, "current", NOW)
    services.leave(db.session, shop, deal.id, leaver.user_id, NOW)
    # Three people reach the lowest price: everybody wins, best-price-only included.
    assert services.close_due(db.session, AFTER) == {"closed": 1, "cancelled": 0}
    closed = [data for name, data in events if name.startswith("deal.")]
    assert len(closed) == 1 and closed[0]["status"] == "closed"
    assert closed[0]["final_price"] == 8000 and closed[0]["vouchers"] == 3
    sent = getattr(app.extensions["mailman"], "outbox", [])
    assert sorted(m.to[0] for m in sent) == sorted(m.user.email for m in [*winners, loser])
    bodies = {m.to[0]: m.body for m in sent}
    for voucher in db.session.scalars(select(Voucher)):
        body = bodies[db.session.get(services.User, voucher.user_id).email]
        assert "final price is ₸80 per unit" in body
        assert services.display_code(voucher) in body


def test_a_deal_below_its_minimum_is_cancelled_and_everybody_released(app, shop, make_member):
    deal = make_deal(shop, tiers=((3, 9000), (5, 8000)))
    member = make_member(shop)
    services.join(db.session, shop, deal.id, member.user_id, 1, "current", NOW)
    assert services.close_deal(db.session, deal.id, AFTER) == "cancelled"
    sent = getattr(app.extensions["mailman"], "outbox", [])
    assert [m.subject for m in sent] == ["The group deal “Sourdough box” did not take place"]
    assert "did not take place" in sent[0].body
    assert db.session.scalars(select(Voucher)).all() == []


def test_a_deal_is_not_closed_before_its_deadline(shop):
    deal = make_deal(shop)
    assert services.close_deal(db.session, deal.id, DEADLINE - timedelta(seconds=1)) is None
    assert services.close_due(db.session, DEADLINE - timedelta(seconds=1)) == {"closed": 0, "cancelled": 0}


def test_a_customers_export_and_erasure(shop, make_member):
    proposer, voter = make_member(shop), make_member(shop)
    deal = make_deal(shop)
    services.join(db.session, shop, deal.id, voter.user_id, 2, "best", NOW)
    idea = services.propose_idea(db.session, shop, proposer.user_id, "Rye bread")
    services.vote(db.session, shop, idea.id, voter.user_id, True)
    exported = services.customer_export(db.session, voter.user_id)
    assert exported["pledges"][0] | {"joined_at": None} == {
        "deal": "Sourdough box", "quantity": 2, "kind": "best", "status": "active", "joined_at": None}
    assert services.customer_export(db.session, proposer.user_id)["ideas"] == [
        {"text": "Rye bread", "votes": 1, "answer": ""}]
    services.forget_customer(db.session, voter.user_id)
    services.forget_customer(db.session, proposer.user_id)
    db.session.commit()
    db.session.expire_all()
    kept = db.session.get(services.Idea, idea.id)
    assert (kept.user_id, kept.votes, kept.text) == (None, 0, "Rye bread")


def test_the_periodic_job_closes_due_deals(shop, make_member):
    from webapp import tasks

    jobs = {task.__name__: task for task in tasks.queue()._registry._periodic_tasks}
    deal = make_deal(shop, tiers=((1, 9000), (2, 8000)))  # its deadline lies a week back
    services.join(db.session, shop, deal.id, make_member(shop).user_id, 1, "current", NOW)
    db.session.commit()  # the job works in its own session: end the test's transaction first
    jobs["group_deals.close_due"]().execute()
    db.session.expire_all()
    assert db.session.get(Deal, deal.id).status == "closed"
    assert len(db.session.scalars(select(Voucher)).all()) == 1


def test_a_pledge_can_change_before_the_deadline_only(shop, make_member):
    deal = make_deal(shop, max_quantity=3)
    member = make_member(shop)
    services.join(db.session, shop, deal.id, member.user_id, 1, "current", NOW)
    changed = services.join(db.session, shop, deal.id, member.user_id, 3, "best", NOW)
    assert (changed.quantity, changed.kind) == (3, "best")
    with pytest.raises(Conflict, match="deadline has passed"):
        services.join(db.session, shop, deal.id, member.user_id, 2, "best", AFTER)
    db.session.expire_all()
    assert db.session.get(Pledge, changed.id).quantity == 3
    assert db.session.get(Deal, deal.id).participants == 1
