"""How many SQL statements one sale sends with every installed plugin switched on.

Counted with SQLAlchemy's ``before_cursor_execute`` on the app's engine, the way the bench counts
(``bench.inprocess.QueryCounter``: SQLite's ``BEGIN IMMEDIATE`` is not counted). The sale is made
as a request makes it: a fresh app context and session, the shop and the card loaded by primary
key (not counted), then everything ``record_purchase`` sends up to its commit. The follow-up work
it leaves in the outbox (after-commit hooks, levels and badges, the weekly figures) runs in the
worker, not in the sale: here it is run afterwards and must complete.

At a shop where every plugin is on (gamification's levels apply to every sale), each on SQLite
and PostgreSQL, at most ``MAX_STATEMENTS``:
- a plain sale (8 when written, 9 since the card's monthly totals for lifetime value and cohorts);
- a sale spending points (9);
- a sale that hands out a neighbour's certificate (10: 11 with the monthly totals until its
  "issued" events, history for the economics pages, moved to the outbox the sale already writes).
A sale of three price-list items sends exactly one statement more than the same sale typed in
(the lines' one INSERT); a sale without items sends none for them.
Not under the limit, pinned so that a change shows: a sale paid partly with the shop's own
certificate (12), a customer referred through a chain of three (15: the chain, the monthly caps,
the reward rows, their balances and ledger rows) and a sale that both redeems and hands out a
certificate (13).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, func, select

from tests.kit import enable_every_plugin, enable_plugins, join
from webapp import outbox
from webapp.extensions import db
from webapp.models import LedgerEntry, OutboxMessage
from webapp.plugins import registry
from webapp.services.ledger import find_balance_mismatches
from webapp.services.purchases import PurchaseDraft, lines_total, priced_lines, record_purchase

MAX_STATEMENTS = 10


@pytest.fixture
def app_overrides():
    from webapp.config import BUILTIN_PLUGINS

    return {"PLUGINS": list(BUILTIN_PLUGINS)}


class _Statements:
    """Statements the engine sends while active (SQLite's ``BEGIN IMMEDIATE`` excluded)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.active = False

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.active and not statement.lstrip().upper().startswith("BEGIN"):
            self.seen.append(statement)


@pytest.fixture
def street(app, make_merchant, make_user):
    """A shop with every plugin on, a neighbour partnered both ways, and customers."""
    from plugins.cross_marketing import services as cross_marketing
    from plugins.referrals import services as referrals

    shop = make_merchant(name="Corner Shop")
    neighbour = make_merchant(name="Neighbour Café")
    enabled = enable_every_plugin(shop)
    assert set(enabled) == {meta.name for meta in registry().installed()}
    enable_plugins(neighbour, "cross_marketing")
    plain = join(shop, make_user(name="Plain"), None)
    first = join(shop, make_user(name="First"))
    second = join(shop, make_user(name="Second"), ref=referrals.ensure_code(db.session, first))
    third = join(shop, make_user(name="Third"), ref=referrals.ensure_code(db.session, second))
    referred = join(shop, make_user(name="Referred"), ref=referrals.ensure_code(db.session, third))
    db.session.commit()
    return {"app": app, "shop": shop, "neighbour": neighbour, "plain": plain.id, "referred": referred.id,
            "cross_marketing": cross_marketing, "shop_id": shop.id}


def _partner(street, shop_hands_out: bool = True):
    """The neighbour hands out the shop's certificate (which the customer brings back); with
    ``shop_hands_out`` the shop also hands out the neighbour's on every sale."""
    cross_marketing, shop, neighbour = street["cross_marketing"], street["shop"], street["neighbour"]
    form = {"face_value": "500", "validity_days": "30", "remainder_policy": "lost"}
    rule = {"rule_min_purchase": "", "max_per_day": ""}
    if shop_hands_out:
        theirs = cross_marketing.create_offer(db.session, neighbour, form)
        invited = cross_marketing.invite(db.session, neighbour, theirs.id, shop.id)
        cross_marketing.respond(db.session, shop, invited.id, True, rule)
    ours = cross_marketing.create_offer(db.session, shop, form)
    invited = cross_marketing.invite(db.session, shop, ours.id, neighbour.id)
    cross_marketing.respond(db.session, neighbour, invited.id, True, rule)
    return ours


def _sale(street, membership_id, amount=100_000, points=0, options=None, counter=None, picks=None):
    """One sale as a request makes it: a fresh app context and session, the shop and the card
    loaded by primary key, then ``record_purchase`` (counted when a counter is given)."""
    from webapp.models import Membership, Merchant

    db.session.close()  # the test's own session holds no transaction (SQLite: no write lock)
    with street["app"].app_context():
        shop = db.session.get(Merchant, street["shop_id"])
        membership = db.session.get(Membership, membership_id)
        shop.network  # noqa: B018 - loaded with the shop by the staff pages
        # The till prices the picked items before the sale (the view's look-up, not the sale's).
        lines = priced_lines(db.session, shop, picks) if picks else ()
        draft = PurchaseDraft(
            membership_id=membership.id, amount=lines_total(lines) if lines else amount,
            points_to_use=points, idempotency_key=uuid.uuid4().hex, options=options or {},
            lines=lines,
        )
        if counter is not None:
            counter.active = True
        try:
            purchase = record_purchase(db.session, shop, membership, draft).purchase
        finally:
            if counter is not None:
                counter.active = False
        figures = (purchase.id, purchase.points_earned, purchase.certificate_value_used)
        db.session.remove()
    return figures


def _listing(seen: list[str]) -> str:
    return f"{len(seen)} statements:\n" + "\n".join(statement.split("\n")[0][:120] for statement in seen)


def _count(street, membership_id, **sale) -> tuple[tuple, list[str]]:
    counter = _Statements()
    handed_over: list[tuple[int, float]] = []
    real_hand_over = outbox.hand_over
    outbox.hand_over = handed_over.extend  # the queue: the worker runs them later, outside the sale
    event.listen(db.engine, "before_cursor_execute", counter)
    try:
        figures = _sale(street, membership_id, counter=counter, **sale)
    finally:
        event.remove(db.engine, "before_cursor_execute", counter)
        outbox.hand_over = real_hand_over
    for message_id, _delay in handed_over:  # the follow-up work completes, as in the worker
        assert outbox.run_message(db.session, message_id)
    return figures, counter.seen


def test_plain_sale(street):
    _sale(street, street["plain"])  # warm: the first sale of a card, caches
    (_id, earned, _cert), seen = _count(street, street["plain"])
    assert earned > 0
    assert len(seen) <= MAX_STATEMENTS, _listing(seen)


def test_sale_of_three_price_list_items_adds_one_statement(street):
    from webapp.models import Merchant, PurchaseItem
    from webapp.services import price_items

    shop = db.session.get(Merchant, street["shop_id"])
    price_items.add_items(db.session, shop, [
        price_items.ItemRow(None, name, price) for name, price in
        (("Latte", 90_000), ("Croissant", 60_000), ("Juice", 75_000))
    ], "en")
    db.session.commit()
    picks = [(item.id, quantity) for item, quantity in zip(price_items.items_of(db.session, shop), (2, 1, 3), strict=True)]
    _sale(street, street["plain"])  # warm
    _sale(street, street["plain"], picks=picks)
    (_plain_id, _earned, _cert), plain = _count(street, street["plain"], amount=465_000)
    (purchase_id, earned, _cert), with_items = _count(street, street["plain"], picks=picks)
    assert len(with_items) == len(plain) + 1, _listing(with_items)
    assert [s for s in with_items if "purchase_items" in s and s.lstrip().upper().startswith("INSERT")]
    assert not [s for s in plain if "purchase_items" in s], _listing(plain)
    lines = db.session.scalars(select(PurchaseItem).where(PurchaseItem.purchase_id == purchase_id)).all()
    assert sorted((line.name, line.unit_price, line.quantity) for line in lines) == [
        ("Croissant", 60_000, 1), ("Juice", 75_000, 3), ("Latte", 90_000, 2)
    ]


def test_sale_spending_points(street, give_points):
    from webapp.models import Membership

    give_points(db.session.get(Membership, street["plain"]), 10_000)
    _sale(street, street["plain"])
    (_id, earned, _cert), seen = _count(street, street["plain"], points=100)
    assert len(seen) <= MAX_STATEMENTS, _listing(seen)


def test_referred_sale(street):
    """Not under the limit: pinned so that a change shows. The friend's sign-up bonus, on by default,
    claims its referral link with one UPDATE on top of the three rewards up the chain."""
    from plugins.referrals.models import Reward

    _sale(street, street["referred"])
    (purchase_id, earned, _cert), seen = _count(street, street["referred"])
    assert db.session.scalar(select(func.count(Reward.id)).where(Reward.purchase_id == purchase_id)) == 3
    assert len(seen) <= MAX_STATEMENTS + 5, _listing(seen)


def test_certificate_issuing_sale(street):
    from plugins.cross_marketing.models import Certificate

    _partner(street)
    _sale(street, street["plain"])
    before = db.session.scalar(select(func.count(Certificate.id)))
    (_id, earned, _used), seen = _count(street, street["plain"])
    assert db.session.scalar(select(func.count(Certificate.id))) == before + 1
    assert len(seen) <= MAX_STATEMENTS, _listing(seen)


def _certificate_for(street, offer) -> int:
    """The customer gets the shop's certificate at the neighbour's (a sale there issues it)."""
    from plugins.cross_marketing.models import Certificate
    from webapp.models import Membership, Merchant

    neighbour = db.session.get(Merchant, street["neighbour"].id)
    customer = db.session.get(Membership, street["plain"])
    at_neighbour = join(neighbour, customer.user)
    record_purchase(db.session, neighbour, at_neighbour, PurchaseDraft(
        membership_id=at_neighbour.id, amount=100_000, points_to_use=0, idempotency_key=uuid.uuid4().hex))
    return db.session.scalar(select(Certificate.id).where(Certificate.offer_id == offer.id))


def test_certificate_redeeming_sale(street):
    """Not under the limit: pinned so that a change shows."""
    from plugins.cross_marketing.models import Certificate

    certificate_id = _certificate_for(street, _partner(street, shop_hands_out=False))
    _sale(street, street["plain"])
    (_id, earned, used), seen = _count(street, street["plain"], options={"certificate_id": str(certificate_id)})
    assert used > 0
    assert db.session.get(Certificate, certificate_id).status == "redeemed"
    assert len(seen) <= MAX_STATEMENTS + 2, _listing(seen)


def test_sale_redeeming_and_issuing(street):
    """Not under the limit: recorded so a change shows (13 statements)."""
    certificate_id = _certificate_for(street, _partner(street))
    _sale(street, street["plain"])
    (_id, earned, used), seen = _count(street, street["plain"], options={"certificate_id": str(certificate_id)})
    assert used > 0
    assert len(seen) <= MAX_STATEMENTS + 3, _listing(seen)


def test_work_moved_out_of_the_sale_arrives_once_after_the_commit(street):
    """The level and the badges follow the sale through the outbox: not there while the messages
    wait (the money and the weekly figures are), there once they ran, and a repeated delivery
    adds nothing."""
    from plugins.gamification.models import Badge, Status
    from webapp.models import MerchantWeeklyStats

    def figures():
        db.session.expire_all()
        weekly = db.session.scalars(
            select(MerchantWeeklyStats).where(MerchantWeeklyStats.merchant_id == street["shop_id"])
        ).all()
        status = db.session.scalar(select(Status).where(Status.membership_id == street["plain"]))
        badges = db.session.scalar(select(func.count(Badge.id)).where(Badge.membership_id == street["plain"]))
        return (sum(w.purchases for w in weekly), sum(w.revenue for w in weekly),
                status.metric if status else None, badges)

    handed_over: list[tuple[int, float]] = []
    real_hand_over = outbox.hand_over
    outbox.hand_over = handed_over.extend  # the queue is slow today: nothing runs yet
    try:
        _sale(street, street["plain"], amount=70_000)
    finally:
        outbox.hand_over = real_hand_over
    assert figures() == (1, 70_000, None, 0)
    assert not find_balance_mismatches(db.session)
    assert db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.membership_id == street["plain"])) == 1
    kinds = set(db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.done_at.is_(None))))
    assert kinds == {"committed"}
    for message_id, _delay in handed_over:
        assert outbox.run_message(db.session, message_id)
    assert figures() == (1, 70_000, 70_000, 1)  # the first-purchase badge
    for message_id, _delay in handed_over:  # a repeated delivery does nothing
        assert not outbox.run_message(db.session, message_id)
    assert figures() == (1, 70_000, 70_000, 1)
