"""A plugin's purchase adjustment carries its own data back to it: the sale hands the adjustments
it applied to ``neighbourly_purchase_recorded``, so no plugin keeps state between the two hooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.plugin_kit import build_plugin
from tests.kit import enable_plugins
from webapp.contracts import PurchaseAdjustment
from webapp.extensions import db
from webapp.services.purchases import PurchaseDraft, record_purchase

ROOT = Path(__file__).resolve().parents[2]
received: list[tuple[int, tuple[PurchaseAdjustment, ...]]] = []


def coupon_adjustments(merchant, membership, draft, session):
    code = draft.options.get("coupon")
    if not code:
        return None
    return [
        PurchaseAdjustment(
            "coupon", f"Coupon {code}", 5000, "discount", data={"coupon": code, "batch": 7}
        )
    ]


def coupon_recorded(merchant, purchase, adjustments):
    received.append((purchase.id, tuple(adjustments)))


@pytest.fixture
def app_overrides():
    received.clear()
    coupon = build_plugin(
        "coupon",
        hooks={
            "neighbourly_collect_purchase_adjustments": coupon_adjustments,
            "neighbourly_purchase_recorded": coupon_recorded,
        },
    )
    return {"EXTRA_PLUGIN_OBJECTS": [coupon]}


def test_the_recorded_hook_gets_the_applied_adjustments_with_their_data(make_merchant, make_member):
    shop = make_merchant()
    member = make_member(shop)
    enable_plugins(shop, "coupon")
    small = record_purchase(
        db.session,
        shop,
        member,
        PurchaseDraft(member.id, 3000, 0, "coupon-1", options={"coupon": "SPRING"}),
    ).purchase
    plain = record_purchase(
        db.session, shop, member, PurchaseDraft(member.id, 3000, 0, "coupon-2")
    ).purchase

    assert [purchase_id for purchase_id, _adjustments in received] == [small.id, plain.id]
    (applied,) = received[0][1]
    assert applied.source == "coupon" and applied.data == {"coupon": "SPRING", "batch": 7}
    assert applied.amount == 3000  # capped at the bill by the core, the data untouched
    assert small.discount == 3000 and small.amount_paid == 0
    assert received[1][1] == ()  # a sale without adjustments hands over none


def test_no_plugin_passes_sale_state_through_the_session():
    offenders = [
        path.relative_to(ROOT).as_posix()
        for name in ("cross_marketing", "group_deals")
        for path in (ROOT / "plugins" / name).rglob("*.py")
        if "session.info" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
