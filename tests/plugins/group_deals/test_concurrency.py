"""Group deals under load: threads released together by a barrier, repeated, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from plugins.group_deals import services
from plugins.group_deals.models import Deal, Pledge, Voucher
from tests.concurrency import race
from tests.plugins.group_deals.conftest import AFTER, NOW, make_deal
from tests.smtp import SMTPSink
from webapp.errors import Conflict
from webapp.extensions import db
from webapp.models import Membership, Merchant
from webapp.services.purchases import PurchaseDraft, record_purchase

THREADS = 20
JOINS = 200
MAXIMUM = 50
REPEATS = 20

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("patient_sqlite")]


@pytest.fixture
def smtp():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def app_overrides(smtp):
    return {"PLUGINS": ["plugins.news", "plugins.group_deals"], "MAIL_BACKEND": "smtp",
            "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port}


def join_in_thread(merchant_id: int, deal_id: int, user_id: int, kind: str = "current") -> int:
    merchant = db.session.get(Merchant, merchant_id)
    return services.join(db.session, merchant, deal_id, user_id, 1, kind, NOW).id


def test_two_hundred_joins_fill_fifty_places_exactly(app, shop, make_member):
    users = [make_member(shop).user_id for _ in range(JOINS)]
    shop_id = shop.id
    for _repeat in range(REPEATS):
        deal = make_deal(shop, tiers=((10, 9000), (MAXIMUM, 8000)), max_participants=MAXIMUM)
        deal_id = deal.id
        db.session.commit()

        outcomes = race(app, THREADS, lambda thread, number: join_in_thread(
            shop_id, deal_id, users[thread * (JOINS // THREADS) + number]), rounds=JOINS // THREADS)

        joined = [o for o in outcomes if not isinstance(o, Exception)]
        refused = [o for o in outcomes if isinstance(o, Exception)]
        assert len(joined) == MAXIMUM and len(set(joined)) == MAXIMUM
        assert {type(e) for e in refused} == {Conflict}, {repr(e) for e in refused}
        assert {e.message for e in refused} == {"This deal is full: no places are left."}
        db.session.expire_all()
        assert db.session.get(Deal, deal_id).participants == MAXIMUM
        assert db.session.scalar(select(func.count()).select_from(Pledge).where(
            Pledge.deal_id == deal_id, Pledge.status == "active")) == MAXIMUM


def test_a_double_clicked_join_makes_one_pledge(app, shop, make_member):
    member = make_member(shop)
    shop_id, user_id = shop.id, member.user_id
    for _repeat in range(5):
        deal = make_deal(shop)
        deal_id = deal.id
        db.session.commit()
        outcomes = race(app, THREADS, lambda thread, number: join_in_thread(shop_id, deal_id, user_id))
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
        assert len(set(outcomes)) == 1
        db.session.expire_all()
        assert db.session.get(Deal, deal_id).participants == 1


def test_closing_twice_at_once_issues_one_set_of_vouchers_and_mails(app, shop, make_member, smtp):
    members = [make_member(shop) for _ in range(4)]
    for repeat in range(10):
        deal = make_deal(shop, tiers=((2, 9000), (4, 8000)))
        for index, member in enumerate(members[:3]):
            services.join(db.session, shop, deal.id, member.user_id, 1, "best" if index == 0 else "current", NOW)
        deal_id = deal.id
        db.session.commit()
        before = len(smtp.messages)

        outcomes = race(app, 2, lambda thread, number: services.close_deal(db.session, deal_id, AFTER))

        assert sorted(map(str, outcomes)) == ["None", "closed"], outcomes
        vouchers = db.session.scalars(select(Voucher).where(Voucher.deal_id == deal_id)).all()
        assert len(vouchers) == 2  # the best-price-only pledge was released at 9000
        assert all(v.price == 9000 for v in vouchers)
        # Three people, three messages: two vouchers and one release.
        assert len(smtp.messages) - before == 3, repeat
        subjects = sorted(" ".join(str(m["Subject"]).split()) for m in smtp.messages[before:])
        assert subjects == [
            "The group deal “Sourdough box” closed above the best price",
            "Your voucher for “Sourdough box”", "Your voucher for “Sourdough box”",
        ]
        assert services.close_deal(db.session, deal_id, AFTER) is None
        assert len(smtp.messages) - before == 3


def buy_in_thread(merchant_id: int, membership_id: int, **options) -> int:
    merchant = db.session.get(Merchant, merchant_id)
    membership = db.session.get(Membership, membership_id)
    draft = PurchaseDraft(membership_id=membership_id, amount=50_000, points_to_use=0,
                          idempotency_key=uuid.uuid4().hex, options=options)
    return record_purchase(db.session, merchant, membership, draft).purchase.discount


def test_one_voucher_is_redeemed_exactly_once_from_twenty_tills(app, shop, make_member):
    member = make_member(shop)
    others = [make_member(shop) for _ in range(2)]
    shop_id, membership_id = shop.id, member.id
    for _repeat in range(REPEATS // 2):
        deal = make_deal(shop, tiers=((2, 9000), (3, 8000)))
        services.join(db.session, shop, deal.id, member.user_id, 2, "current", NOW)
        for other in others:
            services.join(db.session, shop, deal.id, other.user_id, 1, "current", NOW)
        services.close_deal(db.session, deal.id, AFTER)
        voucher = db.session.scalar(select(Voucher).where(Voucher.deal_id == deal.id, Voucher.user_id == member.user_id))
        code = services.voucher_code(voucher.nonce)
        voucher_id = voucher.id
        db.session.commit()

        outcomes = race(app, THREADS, lambda thread, number: buy_in_thread(shop_id, membership_id, group_deal_code=code))

        discounts = [o for o in outcomes if not isinstance(o, Exception)]
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert discounts == [(10000 - 8000) * 2], discounts
        assert {type(e) for e in errors} == {services.VoucherRefused}
        assert {e.message for e in errors} == {"This voucher has already been used."}
        db.session.expire_all()
        assert db.session.get(Voucher, voucher_id).status == "redeemed"
        assert db.session.get(Voucher, voucher_id).redeemed_purchase_id is not None
