"""Switching gamification on, or changing the levels, places every member on the level their
history gives (within the level window), with the badges it earned, in set-based statements."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, select, update

from plugins.gamification import services
from plugins.gamification.models import Badge, Status
from tests.kit import enable_plugins
from tests.plugins.loyalty_kit import app_overrides, buy, join  # noqa: F401  (fixture)
from webapp.extensions import db
from webapp.models import MerchantPlugin, Purchase
from webapp.models.base import utcnow
from webapp.plugins import registry
from webapp.services import merchants as merchant_service
from webapp.services.purchases import refund_purchase

# The default levels for spending: from 0, ₸10,000, ₸50,000, ₸150,000 and ₸400,000.
GOLD = 3


def level_of(membership_id: int) -> tuple[int, bool] | None:
    row = db.session.execute(
        select(Status.position, Status.level_up_seen).where(Status.membership_id == membership_id)
    ).first()
    return tuple(row) if row else None


def badges_of(membership_id: int) -> set[str]:
    return set(db.session.scalars(select(Badge.badge).where(Badge.membership_id == membership_id)))


def switch_on(merchant) -> list[str]:
    notes: list[str] = []
    merchant_service.set_plugin_enabled(db.session, registry(), merchant, "gamification", True,
                                        merchant.owner, notes=notes)
    return notes


def test_switching_on_places_a_big_spender_at_gold_at_once(app, make_merchant, make_user):
    shop = make_merchant(cashback_bp=500)
    big, small, idle = (join(shop, make_user()) for _ in range(3))
    for _ in range(11):
        buy(shop, big, amount=1_500_000)  # ₸15,000 each: ₸165,000 in all
    refunded = buy(shop, big, amount=90_000_000)
    refund_purchase(db.session, shop, refunded.id, shop.owner.id)  # a refund does not count
    buy(shop, small, amount=500_000)
    assert level_of(big.id) is None  # the plugin was off: nothing stored yet

    notes = switch_on(shop)

    names = [level.name for level in services.levels(db.session, shop.id)]
    assert level_of(big.id) == (GOLD, False)  # shown once as a level-up on the card
    assert level_of(small.id) == (0, True) and level_of(idle.id) == (0, True)
    assert badges_of(big.id) == {"first_purchase", "tenth_visit"}
    assert badges_of(small.id) == {"first_purchase"} and badges_of(idle.id) == set()
    [note] = notes
    assert "computed from their purchase history" in note
    assert f"{names[GOLD]}: 1" in note and f"{names[0]}: 2" in note and "3 badges" in note
    # The next sale agrees with the backfill: still Gold, at Gold's rate.
    rate, name = services.level_rate(db.session, shop.id, big.id)
    assert name == names[GOLD]


def test_the_window_counts_only_recent_history_and_rule_changes_replace_members(app, make_merchant, make_user):
    shop = make_merchant(cashback_bp=500)
    enable_plugins(shop, "gamification", window="rolling")
    old, recent = join(shop, make_user()), join(shop, make_user())
    first = buy(shop, old, amount=20_000_000)
    buy(shop, recent, amount=20_000_000)
    db.session.execute(update(Purchase).where(Purchase.id == first.id)
                       .values(created_at=utcnow() - timedelta(days=400)))
    db.session.commit()

    services.backfill(db.session, shop)
    db.session.commit()
    assert level_of(old.id)[0] == 0  # ₸200,000 spent more than a year ago: outside the window
    assert level_of(recent.id)[0] == GOLD

    # The owner lowers Silver and raises Gold: the members move at once.
    rows = [(level.name, level.threshold, level.cashback_bp) for level in services.levels(db.session, shop.id)]
    rows[2] = (rows[2][0], 2_000_000, rows[2][2])
    rows[3] = (rows[3][0], 30_000_000, rows[3][2])
    result = services.save_levels(db.session, shop, rows)
    assert level_of(recent.id)[0] == 2
    assert [count for _name, count in result.per_level] == [1, 0, 1, 0, 0]


def test_backfill_runs_the_same_statements_for_five_or_forty_members(app, make_merchant, make_user):
    def statements_for(members: int) -> int:
        shop = make_merchant()
        for _ in range(members):
            buy(shop, join(shop, make_user()), amount=1_000_000)
        enable_plugins(shop, "gamification")
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            services.backfill(db.session, shop)
            db.session.commit()
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert db.session.scalar(select(Status.id).where(Status.merchant_id == shop.id).limit(1)) is not None
        return len(seen)

    assert statements_for(5) == statements_for(40)


def test_the_marketplace_says_what_switching_on_did(app, client, make_merchant, make_user):
    shop = make_merchant()
    buy(shop, join(shop, make_user()), amount=20_000_000)
    client.login(shop.owner)
    response = client.post_form(f"/business/{shop.slug}/marketplace/gamification/toggle", {"enabled": "1"})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "computed from their purchase history" in page
    assert db.session.scalar(select(MerchantPlugin.enabled).where(MerchantPlugin.merchant_id == shop.id))


def test_levels_follow_a_raised_base_rate_and_a_refunded_receipt_claims_no_level(app, client, make_merchant, make_user):
    from webapp.services.purchases import receipt_lines

    shop = make_merchant(cashback_bp=1000)
    enable_plugins(shop, "gamification")
    ann = join(shop, make_user())
    assert services.level_rate(db.session, shop.id, ann.id) is None
    purchase = buy(shop, ann, amount=1_500_000)  # ₸15,000: Regular (from ₸10,000), base + 1%
    names = [level.name for level in services.levels(db.session, shop.id)]
    assert services.level_rate(db.session, shop.id, ann.id) == (1100, names[1])
    assert any(line.label == "New level" for line in receipt_lines(shop, purchase))

    shop.cashback_bp = 1200  # the owner raises the base rate above Regular's 11%
    db.session.commit()
    assert services.level_rate(db.session, shop.id, ann.id) == (1200, names[1])
    card = services.card(db.session, shop.id, ann.id)
    assert [level.cashback_bp for level in card.level_rows][:3] == [1200, 1200, 1200]

    refund_purchase(db.session, shop, purchase.id, shop.owner.id)
    db.session.refresh(purchase)
    assert not any(line.label == "New level" for line in receipt_lines(shop, purchase))
