"""Referral rules on SQLite and PostgreSQL: linking, three-level rewards, refunds, caps, fraud."""

from __future__ import annotations

from sqlalchemy import func, select

from plugins.referrals import services
from plugins.referrals.models import LinkOpen, MonthlyTotal, ReferralLink, Reward
from tests.kit import enable_plugins
from tests.plugins.loyalty_kit import buy, join
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, User
from webapp.plugins import plugin_settings
from webapp.services.ledger import find_balance_mismatches
from webapp.services.purchases import refund_purchase


def code_of(membership) -> str:
    return services.ensure_code(db.session, membership)


def chain_of(merchant, make_user, length: int):
    """Members m0 <- m1 <- ... (each joined through the previous one's code)."""
    members = [join(merchant, make_user())]
    for _ in range(length - 1):
        members.append(join(merchant, make_user(), ref=code_of(members[-1])))
    db.session.commit()
    return members


def balance(membership) -> int:
    return db.session.scalar(select(Membership.balance).where(Membership.id == membership.id))


def test_friend_is_linked_once_at_joining(make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals")
    ann = join(cafe, make_user(name="Ann Lee"))
    bob = join(cafe, make_user(name="Bob Stone"), ref=code_of(ann).lower())
    db.session.refresh(bob)
    assert bob.referrer_id == ann.id
    assert services.friends_of(db.session, ann) == ["Bob"]
    # Joining again (already a member) never relinks, whatever code comes with it.
    cid = join(cafe, make_user())
    again = join(cafe, db.session.get(Membership, bob.id).user, ref=code_of(cid))
    assert db.session.get(Membership, again.id).referrer_id == ann.id


def test_rewards_three_levels_deep_and_none_beyond(make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals", level1_bp=300, level2_bp=100, level3_bp=50, level3_fixed=7, monthly_cap=10**6,
           signup_bonus=0)  # the chain alone
    m0, m1, m2, m3, m4 = chain_of(cafe, make_user, 5)
    purchase = buy(cafe, m4, amount=100_000)
    rewards = {r.beneficiary_membership_id: r for r in db.session.scalars(
        select(Reward).where(Reward.purchase_id == purchase.id))}
    assert set(rewards) == {m3.id, m2.id, m1.id}
    assert rewards[m3.id].depth == 1 and rewards[m3.id].amount == 3000
    assert rewards[m2.id].depth == 2 and rewards[m2.id].amount == 1000
    assert rewards[m1.id].depth == 3 and rewards[m1.id].amount == 500 + 7
    assert balance(m0) == 0
    reasons = db.session.execute(
        select(LedgerEntry.reason_kind, LedgerEntry.reason_params)
        .where(LedgerEntry.purchase_id == purchase.id, LedgerEntry.kind == "referral")
        .order_by(LedgerEntry.id)).all()
    assert sorted((kind, params["purchase"], params.get("level")) for kind, params in reasons) == [
        ("referrals.reward", purchase.id, 1), ("referrals.reward", purchase.id, 2),
        ("referrals.reward", purchase.id, 3),
    ]
    assert find_balance_mismatches(db.session) == []


def test_refund_reverses_every_referral_reward(make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals", signup_bonus=40, monthly_cap=10**6)
    m0, m1, m2, m3 = chain_of(cafe, make_user, 4)
    purchase = buy(cafe, m3, amount=50_000)
    paid = {m.id: balance(m) for m in (m0, m1, m2)}
    assert all(paid.values())
    refund_purchase(db.session, cafe, purchase.id, cafe.owner.id)
    assert [balance(m) for m in (m0, m1, m2, m3)] == [0, 0, 0, 0]
    assert db.session.scalar(select(func.count()).select_from(Reward).where(
        Reward.purchase_id == purchase.id, Reward.reversed_at.is_(None))) == 0
    assert db.session.scalar(select(func.coalesce(func.sum(MonthlyTotal.total), 0))) == 0
    # The friend's sign-up bonus is free again: their next first purchase pays it.
    again = buy(cafe, m3, amount=50_000)
    assert db.session.scalar(select(Reward.amount).where(Reward.purchase_id == again.id, Reward.depth == 0)) == 40
    assert find_balance_mismatches(db.session) == []


def test_monthly_cap_per_referrer(make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals", level1_bp=1000, monthly_cap=1500)
    ann = join(cafe, make_user())
    bob = join(cafe, make_user(), ref=code_of(ann))
    carl = join(cafe, make_user(), ref=code_of(ann))
    buy(cafe, bob, amount=10_000)  # 1000 points
    buy(cafe, carl, amount=10_000)  # 1000 wanted, 500 left under the cap
    buy(cafe, bob, amount=10_000)  # nothing left
    assert balance(ann) == 1500
    assert db.session.scalar(select(MonthlyTotal.total).where(MonthlyTotal.membership_id == ann.id)) == 1500


def test_no_self_referral_by_email_or_phone(make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals")
    ann = join(cafe, make_user(email="ann@example.com"))
    twin = make_user(email="twin@example.com")
    twin.email = "ANN@Example.com"  # an account that slipped past normalisation: same person
    db.session.commit()
    refused = join(cafe, twin, ref=code_of(ann))
    assert db.session.get(Membership, refused.id).referrer_id is None
    assert db.session.scalar(select(func.count()).select_from(ReferralLink)) == 0
    # The same phone is the same person too (phones are unique per account, so checked directly).
    assert services._same_person(User(id=1, email="a@x.kz", phone="+77010000001"),
                                 User(id=2, email="b@x.kz", phone="+77010000001"))
    assert not services._same_person(User(id=1, email="a@x.kz", phone="+77010000001"),
                                     User(id=2, email="b@x.kz", phone="+77010000002"))
    # A member's own code never links them: re-joining keeps the card as it was.
    again = join(cafe, db.session.get(Membership, ann.id).user, ref=code_of(ann))
    assert again.id == ann.id and db.session.get(Membership, ann.id).referrer_id is None


def test_many_referrals_from_one_address_are_held(app, make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals", ip_weekly_limit=2)
    ann = join(cafe, make_user())
    code = code_of(ann)
    db.session.commit()
    for _ in range(3):
        services.record_open(db.session, cafe, code, "203.0.113.9")
    friends = [join(cafe, make_user(), ref=code) for _ in range(3)]
    statuses = [db.session.scalar(select(ReferralLink.status).where(ReferralLink.referee_membership_id == f.id))
                for f in friends]
    assert statuses == ["active", "active", "held"]
    assert db.session.get(Membership, friends[2].id).referrer_id is None
    link = db.session.scalar(select(ReferralLink).where(ReferralLink.referee_membership_id == friends[2].id))
    services.review(db.session, cafe, link.id, approve=True)
    assert db.session.get(Membership, friends[2].id).referrer_id == ann.id


def test_approving_a_cycle_is_refused(make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals")
    ann = join(cafe, make_user())
    bob = join(cafe, make_user(), ref=code_of(ann))
    db.session.add(ReferralLink(merchant_id=cafe.id, referrer_membership_id=bob.id,
                                referee_membership_id=ann.id, status="held"))
    db.session.commit()
    link = db.session.scalar(select(ReferralLink).where(ReferralLink.referee_membership_id == ann.id))
    assert services.review(db.session, cafe, link.id, approve=True).status == "rejected"
    assert db.session.get(Membership, ann.id).referrer_id is None


def test_merchant_reverses_a_reward_then_refund_does_not_double(make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals", level1_bp=500, monthly_cap=10**6)
    ann = join(cafe, make_user())
    bob = join(cafe, make_user(), ref=code_of(ann))
    purchase = buy(cafe, bob, amount=20_000)
    reward = db.session.scalar(select(Reward).where(Reward.purchase_id == purchase.id,
                                                    Reward.beneficiary_membership_id == ann.id))
    assert balance(ann) == 1000
    services.reverse_reward(db.session, cafe, reward.id)
    assert balance(ann) == 0
    refund_purchase(db.session, cafe, purchase.id, cafe.owner.id)
    assert balance(ann) == 0 and balance(bob) == 0
    assert find_balance_mismatches(db.session) == []


def test_link_open_is_counted_and_redirects_to_join(app, client, make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals")
    ann = join(cafe, make_user())
    code = code_of(ann)
    db.session.commit()
    response = client.get(f"/r/{code}")
    assert response.status_code == 303
    assert f"ref={code}" in response.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(LinkOpen)) == 1
    assert client.get("/r/NOSUCHCODE").status_code == 404
    funnel = services.funnel(db.session, cafe)
    assert funnel.opened == 1 and funnel.joined == 0


def test_owner_page_and_settings_words(app, client, make_merchant, make_user):
    cafe = make_merchant()
    enable_plugins(cafe, "referrals")
    ann = join(cafe, make_user())
    bob = join(cafe, make_user(name="Bob Stone"), ref=code_of(ann))
    buy(cafe, bob)
    client.login(cafe.owner)
    page = client.get(f"/business/{cafe.slug}/referrals/")
    assert page.status_code == 200
    assert "Reverse" in page.get_data(as_text=True)
    from plugins.referrals.hooks import rules_in_words

    words = rules_in_words(cafe, plugin_settings(cafe, "referrals"))
    assert any("three steps" in line for line in words)


def test_by_default_the_friend_gets_a_welcome_and_the_card_says_both_rewards(client, make_merchant, make_user):
    cafe = make_merchant(cashback_bp=0)  # only the referral points land on the cards
    enable_plugins(cafe, "referrals")
    ann = join(cafe, make_user(name="Ann Lee"))
    bob = join(cafe, make_user(name="Bob Stone"), ref=code_of(ann))
    buy(cafe, bob, amount=100_000)
    assert balance(bob) == 3000  # the default sign-up bonus, on the first purchase
    assert balance(ann) == 3000  # 3% of ₸1,000 for the friend who brought him
    client.login(ann.user)
    card = client.get(f"/wallet/cards/{ann.id}").get_data(as_text=True)
    assert "When a friend you brought buys here, you get 3% of what they pay." in card
    assert "Your friend gets 3,000 bonus points on their first purchase." in card
