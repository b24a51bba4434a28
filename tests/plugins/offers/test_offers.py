"""Sending offers: control group held out and reported, the repeat guard, claims, wallet, e-mails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from plugins.offers import services
from plugins.offers.models import OfferClaim, OfferRecipient, SegmentOffer
from tests.plugins.offers.conftest import SECRET, buy
from webapp.errors import Conflict, NotFound, ValidationFailed
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, OutboxMessage
from webapp.services import memberships


def points_offer(
    points: int = 300, control: int = 10, title: str = "We miss you"
) -> services.OfferInput:
    return services.OfferInput(
        title=title,
        message="Come back soon.",
        kind="points",
        points=points,
        reward_key=None,
        control_percent=control,
    )


def send(shop, criteria=None, data=None, confirm=False, now=None):
    return services.send_offer(
        db.session,
        shop,
        criteria or services.Criteria(),
        data or points_offer(),
        shop.owner.id,
        SECRET,
        confirm=confirm,
        now=now,
    )


def test_the_control_group_is_held_out_deterministically_and_gets_nothing(app, shop, make_member):
    members = [make_member(shop) for _ in range(40)]
    offer = send(shop)  # the default 10% control share
    rows = db.session.execute(
        select(OfferRecipient.membership_id, OfferRecipient.in_control).where(
            OfferRecipient.offer_id == offer.id
        )
    ).all()
    control = sorted(card for card, held in rows if held)
    assert len(rows) == 40 and len(control) == 4 == offer.control and offer.recipients == 36
    # The draw is the keyed hash of the offer and the card: the first four of that order.
    drawn = sorted(
        (m.id for m in members), key=lambda card: services.control_order(offer.id, card, SECRET)
    )
    assert control == sorted(drawn[:4])

    held = db.session.get(Membership, control[0])
    with pytest.raises(NotFound):
        services.claim(db.session, shop, offer.id, held)
    db.session.rollback()
    assert services.wallet_offers(db.session, held.user_id) == {}
    treated = next(m for m in members if m.id not in control)
    assert [
        o.id for o, _claimed in services.wallet_offers(db.session, treated.user_id)[shop.id]
    ] == [offer.id]


def test_the_report_compares_users_and_everyone_with_the_control_group(app, shop, make_member):
    members = [make_member(shop) for _ in range(20)]
    sent_at = datetime.now(UTC) - timedelta(days=3)
    for member in members:  # spending before the offer does not count
        buy(shop, member, 99_000, sent_at - timedelta(days=1))
    offer = send(shop, data=points_offer(control=20), now=sent_at)
    control = set(
        db.session.scalars(
            select(OfferRecipient.membership_id).where(
                OfferRecipient.offer_id == offer.id, OfferRecipient.in_control.is_(True)
            )
        )
    )
    assert len(control) == 4
    treated = [m for m in members if m.id not in control]
    held = [m for m in members if m.id in control]
    for member in treated[:3]:
        services.claim(db.session, shop, offer.id, member, now=sent_at + timedelta(hours=1))
        buy(shop, member, 30_000, sent_at + timedelta(days=1))
    services.open_offer(db.session, shop, offer.id, treated[3])
    buy(shop, treated[4], 12_000, sent_at + timedelta(days=1))
    buy(shop, held[0], 8_000, sent_at + timedelta(days=2))
    buy(shop, held[1], 8_000, sent_at + timedelta(days=2))
    refunded = buy(shop, held[2], 50_000, sent_at + timedelta(days=2))
    from webapp.services.purchases import refund_purchase

    refund_purchase(db.session, shop, refunded.id, shop.owner.id)

    report = services.report(db.session, shop, offer)
    assert (report.sent, report.opened, report.used) == (16, 4, 3)
    assert (report.users.customers, report.users.revenue, report.users.per_customer) == (
        3,
        90_000,
        30_000,
    )
    assert (report.treated.customers, report.treated.revenue) == (16, 102_000)
    assert (report.control.customers, report.control.revenue, report.control.per_customer) == (
        4,
        16_000,
        4_000,
    )
    assert report.uplift_per_customer == 102_000 // 16 - 4_000


def test_an_empty_segment_is_refused_before_anything_is_written(app, shop, make_member):
    make_member(shop)
    with pytest.raises(ValidationFailed, match="matches nobody"):
        send(shop, services.Criteria(birthday_month=2))
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(SegmentOffer)) == 0


def test_the_same_segment_twice_within_a_day_needs_confirmation(app, shop, make_member):
    make_member(shop)
    criteria = services.Criteria(idle_days=30)
    now = datetime.now(UTC)
    shop_members = [make_member(shop) for _ in range(2)]
    for member in shop_members:
        member.joined_at = now - timedelta(days=90)
    db.session.commit()
    send(shop, criteria, now=now - timedelta(hours=23))
    with pytest.raises(services.NeedsConfirmation):
        send(shop, criteria, now=now)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(SegmentOffer)) == 1
    send(shop, criteria, confirm=True, now=now)
    send(shop, services.Criteria(idle_days=31), now=now)  # another segment: no question
    send(shop, criteria, now=now + timedelta(days=1, minutes=1))  # a day later: no question
    assert db.session.scalar(select(func.count()).select_from(SegmentOffer)) == 4


def test_points_are_paid_once_and_recorded_in_the_ledger(app, shop, make_member):
    member = make_member(shop)
    offer = send(shop, data=points_offer(points=250, control=0))
    claim, made = services.claim(db.session, shop, offer.id, member)
    again, made_again = services.claim(db.session, shop, offer.id, member)
    assert made and not made_again and again.id == claim.id
    db.session.refresh(member)
    assert member.balance == 250
    entries = db.session.execute(
        select(
            LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.source, LedgerEntry.object_ref
        ).where(LedgerEntry.membership_id == member.id)
    ).all()
    assert entries == [("reward", 250, "offers", f"offers:offers_claims:{claim.id}")]
    assert services.wallet_offers(db.session, member.user_id)[shop.id][0][1] is True


def test_an_offer_ends_after_its_days_and_is_not_found_by_other_merchants(
    app, shop, make_member, make_merchant
):
    member = make_member(shop)
    sent_at = datetime.now(UTC) - timedelta(days=services.VALID_DAYS, minutes=1)
    offer = send(shop, data=points_offer(control=0), now=sent_at)
    with pytest.raises(Conflict, match="ended"):
        services.claim(db.session, shop, offer.id, member)
    db.session.rollback()
    other = make_merchant()
    with pytest.raises(NotFound):
        services.claim(db.session, other, offer.id, member)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OfferClaim)) == 0


def test_e_mails_go_to_consenting_recipients_in_their_language(app, shop, make_member, make_user):
    agreed = make_member(shop, make_user(name="Aigerim Bek", locale="ru"))
    memberships.record_consent(
        db.session, agreed.user, shop, memberships.MARKETING, True, "test", "marketing"
    )
    silent = make_member(shop)
    db.session.commit()
    send(shop, data=points_offer(control=0))
    messages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "email")).all()
    offers_mail = [m for m in messages if "We miss you" in m.payload["subject"]]
    assert [m.payload["to"] for m in offers_mail] == [agreed.user.email]
    assert offers_mail[0].payload["text"].startswith("Здравствуйте, Aigerim")
    assert silent.user.email not in {
        m.payload["to"] for m in messages if "We miss you" in m.payload["subject"]
    }
