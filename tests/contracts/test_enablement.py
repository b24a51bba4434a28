"""Installed is not enabled: a plugin's hooks and pages reach only merchants that switched it on."""

from __future__ import annotations

import itertools

import pytest
from flask import current_app
from sqlalchemy import select

from tests.contracts.plugin_kit import build_plugin
from tests.kit import disable_plugins, enable_plugins
from webapp.contracts import ReceiptLine
from webapp.extensions import db
from webapp.models import MerchantPlugin
from webapp.plugins import enabled_plugin_names, forget_enabled_cache
from webapp.services.purchases import PurchaseDraft, receipt_lines, record_purchase

recorded_for: list[int] = []  # merchant ids whose purchases the probe saw inside the transaction
_keys = itertools.count(1)


def probe_receipt_line(merchant, purchase):
    return [ReceiptLine("Probe stamp", "1 of 10", order=35, source="probe")]


def probe_purchase_recorded(merchant, purchase, membership, session):
    recorded_for.append(merchant.id)


@pytest.fixture
def app_overrides():
    recorded_for.clear()
    probe = build_plugin(
        "probe",
        hooks={
            "neighbourly_collect_receipt_lines": probe_receipt_line,
            "neighbourly_purchase_recorded": probe_purchase_recorded,
        },
        with_page=True,
    )
    return {"EXTRA_PLUGIN_OBJECTS": [probe]}


@pytest.fixture
def shops(make_merchant, make_member):
    a = make_merchant(name="Alpha Salon")
    b = make_merchant(name="Beta Bakery")
    a.member = make_member(a)
    b.member = make_member(b)
    enable_plugins(a, "probe")
    return a, b


def buy(merchant):
    draft = PurchaseDraft(merchant.member.id, 100000, 0, f"enablement-{next(_keys)}")
    purchase = record_purchase(db.session, merchant, merchant.member, draft).purchase
    with current_app.test_request_context():  # receipts are rendered for a request (locale)
        return [line.label for line in receipt_lines(merchant, purchase)]


def test_hooks_run_only_for_merchants_that_enabled_the_plugin(shops):
    a, b = shops
    assert "Probe stamp" in buy(a)
    assert "Probe stamp" not in buy(b)
    assert "Bill" in buy(b)  # the core's own receipt lines are hooks too, always on
    assert recorded_for == [a.id]  # recorded inside A's transaction; B's two purchases never


def test_toggling_takes_effect_at_once_without_a_restart(shops, client):
    a, b = shops
    client.login(b.owner)
    response = client.post_form(f"/business/{b.slug}/marketplace/probe/toggle", {"enabled": "1"})
    assert response.status_code == 303
    assert "Probe stamp" in buy(b)
    assert client.get(f"/business/{b.slug}/probe/").status_code == 200

    response = client.post_form(f"/business/{b.slug}/marketplace/probe/toggle", {"enabled": "0"}, htmx=True)
    assert response.status_code == 200
    assert "Probe stamp" not in buy(b)
    assert client.get(f"/business/{b.slug}/probe/").status_code == 404
    # Switching off kept the row; A was never affected.
    rows = db.session.scalars(select(MerchantPlugin).where(MerchantPlugin.plugin_name == "probe")).all()
    assert {(row.merchant_id, row.enabled) for row in rows} == {(a.id, True), (b.id, False)}
    assert "Probe stamp" in buy(a)


def test_plugin_pages_answer_404_where_the_plugin_is_off(shops, client):
    a, b = shops
    assert client.get(f"/business/{a.slug}/probe/").get_data(as_text=True) == f"probe page of {a.slug}"
    assert client.get(f"/business/{b.slug}/probe/").status_code == 404
    assert client.get("/business/no-such-shop/probe/").status_code == 404


def test_an_enabled_row_for_a_plugin_no_longer_installed_is_ignored(shops, client):
    a, _b = shops
    db.session.add(MerchantPlugin(merchant_id=a.id, plugin_name="uninstalled", enabled=True, settings={}))
    db.session.commit()
    forget_enabled_cache(a)  # as a new request would see it
    assert enabled_plugin_names(a) == frozenset({"probe"})
    client.login(a.owner)
    page = client.get(f"/business/{a.slug}/marketplace")
    assert page.status_code == 200
    assert 'id="plugin-uninstalled"' not in page.get_data(as_text=True)


def test_merchants_with_plugin_are_those_that_switched_it_on(shops, make_merchant):
    from webapp.plugin_api import merchant_ids_with_plugin, merchants_with_plugin

    alpha, beta = shops  # probe on for alpha only
    suspended = make_merchant(name="Gamma Garage")
    enable_plugins(suspended, "probe")
    suspended.status = "suspended"
    # A row that was switched off again, and a merchant with another plugin on, do not count.
    enable_plugins(beta, "probe")
    disable_plugins(beta, "probe")
    enable_plugins(beta, "news")
    db.session.commit()

    assert [m.id for m in merchants_with_plugin(db.session, "probe")] == [alpha.id]
    everyone = merchants_with_plugin(db.session, "probe", active_only=False)
    assert [m.id for m in everyone] == sorted([alpha.id, suspended.id])
    assert set(db.session.scalars(merchant_ids_with_plugin("probe"))) == {alpha.id, suspended.id}
    assert list(db.session.scalars(merchant_ids_with_plugin("news"))) == [beta.id]
    assert merchants_with_plugin(db.session, "no_such_plugin") == []
