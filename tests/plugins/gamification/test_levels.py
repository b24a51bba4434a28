"""Status levels and badges on SQLite and PostgreSQL, with a Hypothesis recomputation check."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from plugins.gamification import services
from plugins.gamification.models import Badge, Status
from plugins.referrals import services as referral_services
from tests.kit import enable_plugins
from tests.plugins.loyalty_kit import buy, join
from webapp.extensions import db
from webapp.models import Membership, Purchase
from webapp.plugins import plugin_settings
from webapp.services.purchases import earn_rate, receipt_lines, refund_purchase

THRESHOLDS = {"spend": [0, 5_000, 20_000, 60_000, 150_000], "visits": [0, 2, 4, 7, 10],
              "referrals": [0, 1, 2, 3, 5]}
RATES = [500, 600, 700, 850, 1000]


def setup_levels(merchant, basis: str) -> None:
    enable_plugins(merchant, "gamification", "referrals", basis=basis)
    names = ["New", "Regular", "Silver", "Gold", "VIP"]
    services.save_levels(db.session, merchant, list(zip(names, THRESHOLDS[basis], RATES, strict=True)))


def scratch_level(merchant, membership_id: int, basis: str) -> int:
    """The level from raw rows, computed in Python without the plugin's queries."""
    purchases = db.session.scalars(select(Purchase).where(Purchase.merchant_id == merchant.id)).all()
    live = [p for p in purchases if p.refunded_at is None]
    if basis == "spend":
        value = sum(p.amount for p in live if p.membership_id == membership_id)
    elif basis == "visits":
        value = sum(1 for p in live if p.membership_id == membership_id)
    else:
        friends = set(db.session.scalars(select(Membership.id).where(Membership.referrer_id == membership_id)))
        value = len({p.membership_id for p in live if p.membership_id in friends})
    return max(i for i, threshold in enumerate(THRESHOLDS[basis]) if value >= threshold)


def stored_level(membership_id: int) -> int:
    status = db.session.scalar(select(Status).where(Status.membership_id == membership_id))
    return status.effective if status else 0


operations = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, 6)),
        st.tuples(st.just("buy"), st.integers(0, 6), st.integers(1_000, 40_000)),
        st.tuples(st.just("refund"), st.integers(0, 20)),
    ),
    min_size=1, max_size=14,
)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(basis=st.sampled_from(["spend", "visits", "referrals"]), ops=operations)
def test_stored_level_equals_recomputation(app, make_merchant, make_user, basis, ops):
    cafe = make_merchant()
    setup_levels(cafe, basis)
    members = [join(cafe, make_user())]
    purchases: list[int] = []
    for op in ops:
        if op[0] == "join":
            referrer = members[op[1] % len(members)]
            members.append(join(cafe, make_user(), ref=referral_services.ensure_code(db.session, referrer)))
        elif op[0] == "buy":
            purchases.append(buy(cafe, members[op[1] % len(members)], amount=op[2]).id)
        elif purchases:
            purchase_id = purchases[op[1] % len(purchases)]
            if db.session.get(Purchase, purchase_id).refunded_at is None:
                refund_purchase(db.session, cafe, purchase_id, cafe.owner.id)
    db.session.expire_all()
    for member in members:
        assert stored_level(member.id) == scratch_level(cafe, member.id, basis)
    # The periodic check agrees: nothing to fix.
    assert services.check_levels(db.session, cafe, plugin_settings(cafe, "gamification")) == 0


def test_level_rate_replaces_base_rate_and_receipt_shows_level_up(make_merchant, make_user):
    cafe = make_merchant(cashback_bp=500)
    setup_levels(cafe, "spend")
    ann = join(cafe, make_user())
    assert earn_rate(cafe, ann).basis_points == 500
    first = buy(cafe, ann, amount=6_000)  # reaches Regular
    lines = receipt_lines(cafe, first)
    assert any("Regular" in line.value for line in lines)
    assert earn_rate(cafe, ann).basis_points == 600
    second = buy(cafe, ann, amount=1_000)
    assert second.earn_rate_bp == 600
    assert not any(line.source == "gamification" for line in receipt_lines(cafe, second))


def test_badges_are_earned_once(make_merchant, make_user, network):
    shops = [make_merchant() for _ in range(3)]
    user = make_user()
    for shop in shops:
        setup_levels(shop, "visits")
    cards = [join(shop, user) for shop in shops]
    for _ in range(11):
        buy(shops[0], cards[0], amount=1_000)
    buy(shops[1], cards[1], amount=1_000)
    badges = set(db.session.scalars(select(Badge.badge).where(Badge.membership_id == cards[0].id)))
    assert {"first_purchase", "tenth_visit"} <= badges
    assert "good_neighbour" not in badges
    buy(shops[2], cards[2], amount=1_000)
    assert "good_neighbour" in set(db.session.scalars(select(Badge.badge).where(Badge.membership_id == cards[2].id)))
    counts = db.session.execute(select(Badge.badge).where(Badge.membership_id == cards[0].id)).all()
    assert len(counts) == len({row[0] for row in counts})


def test_wallet_shows_level_up_once_and_progress(app, client, make_merchant, make_user):
    cafe = make_merchant(cashback_bp=500)
    setup_levels(cafe, "spend")
    user = make_user()
    ann = join(cafe, user)
    buy(cafe, ann, amount=6_000)
    client.login(user)
    wallet = client.get("/wallet/").get_data(as_text=True)
    assert "Level Regular · 6% cashback" in wallet  # the compact summary
    assert "<progress" not in wallet
    page = client.get(f"/wallet/cards/{ann.id}").get_data(as_text=True)
    assert "Congratulations! You reached Regular." in page
    assert "<progress" in page
    assert "to reach Silver" in page
    again = client.get(f"/wallet/cards/{ann.id}").get_data(as_text=True)
    assert "Congratulations" not in again


def test_owner_levels_page_and_validation(app, client, make_merchant, make_user):
    cafe = make_merchant()
    setup_levels(cafe, "visits")
    ann = join(cafe, make_user(name="Ann Lee"))
    buy(cafe, ann)
    client.login(cafe.owner)
    page = client.get(f"/business/{cafe.slug}/levels/")
    assert page.status_code == 200 and "<svg" in page.get_data(as_text=True)
    form = {f"name_{i}": n for i, n in enumerate(["A", "B", "C", "D", "E"])}
    form.update({f"threshold_{i}": str(v) for i, v in enumerate([0, 5, 3, 8, 9])})
    form.update({f"rate_{i}": "5" for i in range(5)})
    bad = client.post_form(f"/business/{cafe.slug}/levels/", form)
    assert bad.status_code == 422
    assert "higher threshold" in bad.get_data(as_text=True)
    form["threshold_2"] = "6"
    assert client.post_form(f"/business/{cafe.slug}/levels/", form).status_code == 303
    assert [lvl.name for lvl in services.levels(db.session, cafe.id)] == ["A", "B", "C", "D", "E"]


def test_other_merchants_levels_page_is_404(app, client, make_merchant):
    cafe = make_merchant()
    other = make_merchant()
    setup_levels(cafe, "spend")
    client.login(other.owner)
    assert client.get(f"/business/{cafe.slug}/levels/").status_code == 404
    assert client.get(f"/business/{other.slug}/levels/").status_code == 404  # not enabled there


def test_level_up_is_emailed_once(app, make_merchant, make_user):
    cafe = make_merchant(cashback_bp=500)
    setup_levels(cafe, "spend")
    ann = join(cafe, make_user(email="ann.level@example.com"))
    mail = app.extensions["mailman"]
    before = len(getattr(mail, "outbox", []))
    purchase = buy(cafe, ann, amount=6_000)
    outbox = mail.outbox
    sent = [m for m in outbox[before:] if "ann.level@example.com" in m.to]
    assert len(sent) == 1 and "Regular" in sent[0].subject
    from plugins.gamification import tasks

    tasks.announce_level_up(cafe, purchase)  # a retried task sends nothing more
    assert len([m for m in outbox[before:] if "ann.level@example.com" in m.to]) == 1


def test_monthly_streak_badge(make_merchant, make_user):
    import uuid
    from datetime import UTC, datetime

    from webapp.services.purchases import PurchaseDraft, record_purchase

    cafe = make_merchant()
    setup_levels(cafe, "visits")
    ann = join(cafe, make_user())
    now = datetime.now(UTC)
    moments = []
    year, month = now.year, now.month
    for _ in range(3):
        moments.append(datetime(year, month, 1, 12, tzinfo=UTC))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    for moment in reversed(moments):
        record_purchase(db.session, cafe, ann, PurchaseDraft(
            membership_id=ann.id, amount=1_000, points_to_use=0, idempotency_key=uuid.uuid4().hex,
            created_at=moment))
    assert "monthly_streak" in set(db.session.scalars(select(Badge.badge).where(Badge.membership_id == ann.id)))


def age(condition, delta) -> None:
    for purchase in db.session.scalars(select(Purchase).where(condition)).all():
        purchase.created_at = purchase.created_at - delta
    db.session.commit()


def test_time_drop_is_kept_without_downgrades_and_announced_with_them(make_merchant, make_user):
    from datetime import timedelta

    cafe = make_merchant()
    setup_levels(cafe, "visits")
    ann = join(cafe, make_user())
    for _ in range(4):
        buy(cafe, ann, amount=1_000)  # Silver (4 visits)
    # The purchases age out of a rolling window: the data now says New.
    age(Purchase.membership_id == ann.id, timedelta(days=400))
    enable_plugins(cafe, "gamification", window="rolling")
    settings = plugin_settings(cafe, "gamification")
    services.check_levels(db.session, cafe, settings)
    status = services.status_of(db.session, ann.id)
    assert (status.position, status.held_position, status.effective) == (0, 2, 2)  # kept
    # With downgrades on, a second member's drop is announced 30 days ahead, then applied.
    bob = join(cafe, make_user())
    for _ in range(4):
        buy(cafe, bob, amount=1_000)
    age(Purchase.membership_id == bob.id, timedelta(days=400))
    enable_plugins(cafe, "gamification", downgrades=True)
    settings = plugin_settings(cafe, "gamification")
    services.check_levels(db.session, cafe, settings)
    status = services.status_of(db.session, bob.id)
    assert status.effective == 2 and status.downgrade_to == 0 and status.downgrade_on is not None
    services.check_levels(db.session, cafe, settings, today=status.downgrade_on)
    db.session.refresh(status)
    assert status.effective == 0 and status.downgrade_on is None


def test_dashboard_and_portrait_show_levels_and_referrals(app, client, make_merchant, make_user):
    cafe = make_merchant()
    setup_levels(cafe, "spend")
    ann = join(cafe, make_user(name="Ann Lee"))
    bob = join(cafe, make_user(name="Bob Stone"), ref=referral_services.ensure_code(db.session, ann))
    buy(cafe, bob, amount=6_000)
    client.login(cafe.owner)
    dashboard = client.get(f"/business/{cafe.slug}/dashboard").get_data(as_text=True)
    panel_url = f"/business/{cafe.slug}/levels/panel"
    assert f'hx-get="{panel_url}"' in dashboard  # the aggregate panel loads after the page
    panel = client.get(panel_url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Customers by level" in panel and "friends joined" in dashboard
    portrait = client.get(f"/business/{cafe.slug}/customers/{ann.id}").get_data(as_text=True)
    assert "Brought 1 friends: Bob" in portrait
    assert "Status level" in portrait


def test_friend_purchase_lifts_the_referrer_who_is_emailed_not_the_cashier_receipt(app, make_merchant, make_user):
    cafe = make_merchant()
    setup_levels(cafe, "referrals")
    ann = join(cafe, make_user(email="ann.ref@example.com"))
    bob = join(cafe, make_user(), ref=referral_services.ensure_code(db.session, ann))
    mail = app.extensions["mailman"]
    before = len(getattr(mail, "outbox", []))
    purchase = buy(cafe, bob, amount=2_000)
    assert stored_level(ann.id) == 1
    assert [m.to for m in mail.outbox[before:]] == [["ann.ref@example.com"]]
    assert not any(line.source == "gamification" for line in receipt_lines(cafe, purchase))
    refund_purchase(db.session, cafe, purchase.id, cafe.owner.id)
    assert stored_level(ann.id) == 0  # the friend's only purchase is gone: no effective referral


def test_level_up_email_is_written_in_the_customers_language(app, make_merchant, make_user):
    cafe = make_merchant(name="Кофе Абай", cashback_bp=500)
    cafe.network.default_locale = "bg"
    db.session.commit()
    setup_levels(cafe, "spend")
    kazakh = join(cafe, make_user(email="asel.level@example.com", locale="kk"))
    unchosen = join(cafe, make_user(email="maria.level@example.com"))
    mail = app.extensions["mailman"]
    before = len(getattr(mail, "outbox", []))
    with app.test_request_context(headers={"Accept-Language": "en"}):  # whoever rings it up reads English
        buy(cafe, kazakh, amount=6_000)
        buy(cafe, unchosen, amount=6_000)
    sent = {message.to[0]: message for message in mail.outbox[before:]}
    assert sent["asel.level@example.com"].subject.startswith("Сіз Кофе Абай жерінде ")
    assert sent["asel.level@example.com"].body.startswith("Құттықтаймыз!")
    assert sent["maria.level@example.com"].subject.startswith("Достигнахте ")  # the network's language
    assert sent["maria.level@example.com"].body.startswith("Поздравления!")


def test_the_periodic_check_fixes_levels_only_where_the_plugin_is_on(make_merchant, make_user):
    from plugins.gamification.tasks import check_all
    from webapp.plugins import registry
    from webapp.services import merchants as merchant_service

    cafe, bakery = make_merchant(), make_merchant()
    tampered = []
    for shop in (cafe, bakery):
        setup_levels(shop, "spend")
        member = join(shop, make_user())
        buy(shop, member, amount=6_000)  # reaches Regular
        tampered.append(member.id)
    merchant_service.set_plugin_enabled(db.session, registry(), bakery, "gamification", False, bakery.owner)
    for membership_id in tampered:
        db.session.scalar(select(Status).where(Status.membership_id == membership_id)).position = 0
    db.session.commit()

    assert check_all() == 1  # the cafe's; the bakery switched the plugin off
    assert [stored_level(membership_id) for membership_id in tampered] == [1, 0]
