"""Vouchers at the till: the adjustment, refunds, expiry, wrong and guessed codes, and a sale
without a voucher that costs this plugin no SQL statement at all."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import event, func, select

from plugins.group_deals import services
from plugins.group_deals.models import Voucher
from tests.kit import disable_plugins, enable_plugins
from tests.plugins.group_deals.conftest import AFTER, NOW, buy, make_deal
from webapp.errors import PurchaseDeclined
from webapp.extensions import db
from webapp.models import Purchase
from webapp.models.base import utcnow
from webapp.services import codes
from webapp.services.purchases import receipt_lines, refund_purchase


@pytest.fixture
def holder(shop, make_member):
    """A customer holding a voucher for 2 units at 80.00 instead of 100.00."""
    member = make_member(shop)
    deal = make_deal(shop, tiers=((2, 9000), (3, 8000)))
    services.join(db.session, shop, deal.id, member.user_id, 2, "current", NOW)
    for _ in range(2):
        services.join(db.session, shop, deal.id, make_member(shop).user_id, 1, "current", NOW)
    services.close_deal(db.session, deal.id, AFTER)
    return member


def voucher_of(member) -> Voucher:
    return db.session.scalar(select(Voucher).where(Voucher.user_id == member.user_id))


def test_the_voucher_takes_the_difference_off_and_shows_on_the_receipt(shop, holder):
    voucher = voucher_of(holder)
    purchase = buy(shop, holder, 30_000, group_deal_voucher=str(voucher.id))
    assert purchase.discount == 2 * (10000 - 8000)
    assert purchase.amount_paid == 30_000 - 4000
    with current_app.test_request_context():
        lines = {line.label: line.value for line in receipt_lines(shop, purchase)}
    assert lines["Group deal “Sourdough box”"] == "2 × ₸80 (deal price)"
    db.session.expire_all()
    assert voucher_of(holder).status == "redeemed"
    with pytest.raises(services.VoucherRefused, match="already been used"):
        buy(shop, holder, 30_000, group_deal_voucher=str(voucher.id))


def test_a_voucher_that_would_take_nothing_off_declines_the_sale_and_stays_usable(shop, holder, give_points):
    """Points already cover the whole bill: the voucher is not used up for nothing."""
    shop.max_points_share_pct = 100
    db.session.commit()
    give_points(holder, 30_000)
    voucher = voucher_of(holder)
    with pytest.raises(PurchaseDeclined, match="would take nothing off this bill"):
        buy(shop, holder, 30_000, points=30_000, group_deal_voucher=str(voucher.id))
    db.session.rollback()
    db.session.expire_all()
    assert voucher_of(holder).status == "issued"
    assert db.session.scalar(select(func.count(Purchase.id)).where(Purchase.membership_id == holder.id)) == 0
    purchase = buy(shop, holder, 30_000, points=20_000, group_deal_voucher=str(voucher.id))
    assert (purchase.discount, purchase.amount_paid) == (4000, 30_000 - 20_000 - 4000)


def test_a_refund_makes_the_voucher_usable_again(shop, holder):
    code = services.voucher_code(voucher_of(holder).nonce)
    purchase = buy(shop, holder, 30_000, group_deal_code=codes.group(code).lower())
    refund_purchase(db.session, shop, purchase.id, shop.owner.id)
    db.session.expire_all()
    voucher = voucher_of(holder)
    assert (voucher.status, voucher.redeemed_purchase_id) == ("issued", None)
    again = buy(shop, holder, 30_000, group_deal_code=code)
    assert again.discount == 4000


def test_vouchers_expire_after_the_redemption_window(shop, holder):
    voucher = voucher_of(holder)
    assert services.expire_vouchers(db.session, voucher.expires_at - timedelta(seconds=1)) == 0
    assert services.expire_vouchers(db.session, voucher.expires_at) == 3  # the deal's three vouchers
    with pytest.raises(services.VoucherRefused, match="expired"):
        buy(shop, holder, 30_000, group_deal_voucher=str(voucher.id))


def test_foreign_mistyped_and_guessed_codes_get_one_answer_and_write_nothing(
    app, shop, holder, make_member, make_merchant
):
    other_shop = make_merchant()
    enable_plugins(other_shop, "group_deals")
    stranger = make_member(shop)
    code = services.voucher_code(voucher_of(holder).nonce)
    before = db.session.scalar(select(Purchase.id).order_by(Purchase.id.desc()).limit(1))
    with pytest.raises(services.VoucherRefused, match="not valid for this customer"):
        buy(shop, stranger, 30_000, group_deal_code=code)  # someone else's voucher
    with pytest.raises(services.VoucherRefused, match="not valid for this customer"):
        buy(other_shop, make_member(other_shop, user=holder.user), 30_000, group_deal_code=code)
    guessed = codes.generate(16)
    with pytest.raises(services.VoucherRefused, match="not valid for this customer"):
        buy(shop, holder, 30_000, group_deal_code=guessed)
    for picked in ("²", "-1", "99999999999999999999999"):
        with pytest.raises(services.VoucherRefused, match="not valid for this customer"):
            buy(shop, holder, 30_000, group_deal_voucher=picked)
    with pytest.raises(services.VoucherRefused, match="mistyped"):
        buy(shop, holder, 30_000, group_deal_code=code[:-1] + ("0" if code[-1] != "0" else "1"))
    assert db.session.scalar(select(Purchase.id).order_by(Purchase.id.desc()).limit(1)) == before
    assert voucher_of(holder).status == "issued"


def test_guessing_codes_is_rate_limited(app, shop, holder):
    app.config["GROUP_DEALS_LOOKUP_LIMITS"] = "3 per minute"
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    with app.test_request_context(environ_base={"REMOTE_ADDR": address}):
        for _ in range(3):
            with pytest.raises(services.VoucherRefused, match="not valid"):
                buy(shop, holder, 30_000, group_deal_code=codes.generate(16))
        with pytest.raises(services.TooManyAttempts, match="Too many wrong voucher codes"):
            buy(shop, holder, 30_000, group_deal_code=codes.generate(16))


def _statements_of_a_sale(shop, member) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    db.session.commit()
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        buy(shop, member, 20_000, key=uuid.uuid4().hex)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_a_sale_without_a_voucher_runs_no_statement_of_this_plugin(shop, holder):
    _statements_of_a_sale(shop, holder)  # the steady state: what the merchant's caches hold
    on = _statements_of_a_sale(shop, holder)
    assert not [s for s in on if "group_deals" in s]
    disable_plugins(shop, "group_deals")
    _statements_of_a_sale(shop, holder)
    off = _statements_of_a_sale(shop, holder)
    assert len(on) == len(off), (on, off)


def test_the_checkout_panel_lists_the_vouchers_held_here(app, shop, holder):
    from webapp.templating import slot

    with current_app.test_request_context():
        html = str(slot("checkout", shop, membership=holder))
    voucher = voucher_of(holder)
    assert f'<option value="{voucher.id}">' in html
    assert services.voucher_code(voucher.nonce)[-4:] in html
    assert voucher.expires_at > utcnow()
