"""Marketplace over HTTP: owners switch plugins in place (htmx) or by plain POST, settings validate."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.conftest import form_status
from tests.contracts.plugin_kit import build_plugin
from webapp.extensions import db
from webapp.models import MerchantPlugin
from webapp.plugins import SettingSpec, forget_enabled_cache, is_enabled, plugin_settings

SETTINGS = (
    SettingSpec("visits", "int", "Visits needed", default=5, min=1, max=20),
    SettingSpec("bonus", "money", "Bonus amount", default=50000),
    SettingSpec("share", "percent", "Share", default=10),
    SettingSpec("loud", "bool", "Announce at the till", default=False),
    SettingSpec("greet", "bool", "Greet by name", default=True),
    SettingSpec("motto", "str", "Motto", default="Hello", max_length=20),
    SettingSpec("note", "text", "Note", default=""),
    SettingSpec("style", "choice", "Style", default="calm", choices=(("calm", "Calm"), ("bold", "Bold"))),
)


@pytest.fixture
def app_overrides():
    return {
        "EXTRA_PLUGIN_OBJECTS": [
            build_plugin("probe_base", title="Probe Base", settings=SETTINGS),
            build_plugin("probe_addon", title="Probe Addon", requires=("probe_base",)),
        ]
    }


@pytest.fixture
def shop(make_merchant, make_user):
    cashier = make_user(name="Cashier")
    merchant = make_merchant(name="Corner Bakery", cashiers=[cashier])
    merchant.cashier = cashier
    return merchant


def url(merchant, *parts: str) -> str:
    return "/".join([f"/business/{merchant.slug}/marketplace", *parts])


def enabled(merchant, name: str) -> bool:
    forget_enabled_cache(merchant)
    return is_enabled(merchant, name)


def card_html(page: str, name: str) -> str:
    match = re.search(rf'<article[^>]*id="plugin-{name}".*?</article>', page, re.S)
    assert match, f"no card for {name}"
    return match.group(0)


def test_owner_sees_a_card_per_installed_plugin(client, shop):
    client.login(shop.owner)
    response = client.get(url(shop))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    base = card_html(page, "probe_base")
    assert "Probe Base" in base and "9.9.9" in base and "probe_base line on the receipt" in base
    assert "Switch on" in base
    addon = card_html(page, "probe_addon")
    assert "Needs:" in addon and "Probe Base" in addon
    card_html(page, "news")  # the built-in plugin is installed too
    # Generated settings form: no box ticked unless the stored/default value is true.
    assert re.search(r'name="loud" value="1"\s*>', base)
    assert re.search(r'name="greet" value="1" checked', base)
    assert 'name="bonus" value="500.00"' in base  # minor units shown as money
    assert '<option value="calm" selected>' in base
    assert 'id="staff-subnav"' in page


def test_owner_toggles_in_place_with_htmx(client, shop):
    client.login(shop.owner)
    response = client.post_form(url(shop, "news", "toggle"), {"enabled": "1"}, htmx=True)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert body.lstrip().startswith('<article class="card plugin-card enabled" id="plugin-news"')
    assert 'hx-target="this"' in body and 'hx-swap="outerHTML"' in body
    assert "Switch off" in body
    # The nav comes along out of band, now with the plugin's own link.
    assert 'hx-swap-oob="true"' in body and f"/business/{shop.slug}/news/" in body
    assert enabled(shop, "news")

    response = client.post_form(url(shop, "news", "toggle"), {"enabled": "0"}, htmx=True)
    assert response.status_code == 200
    assert "Switch on" in response.get_data(as_text=True)
    assert not enabled(shop, "news")
    # Disabling keeps the row (and with it the settings): data is never deleted.
    row = db.session.scalar(select(MerchantPlugin).where(MerchantPlugin.merchant_id == shop.id))
    assert row is not None and row.enabled is False


def test_plain_post_toggles_and_redirects(client, shop):
    client.login(shop.owner)
    response = client.post_form(url(shop, "news", "toggle"), {"enabled": "1"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"{url(shop)}#plugin-news")
    assert enabled(shop, "news")
    page = client.get(url(shop)).get_data(as_text=True)
    assert "is switched on" in page
    assert "Switch off" in card_html(page, "news")
    # The same submission again (double click) leaves it on rather than flipping it back.
    assert client.post_form(url(shop, "news", "toggle"), {"enabled": "1"}).status_code == 303
    assert enabled(shop, "news")
    assert client.post_form(url(shop, "news", "toggle"), {"enabled": "0"}).status_code == 303
    assert not enabled(shop, "news")


def test_cashier_and_other_owners_get_404(client, shop, make_merchant):
    client.login(shop.cashier)
    assert client.get(url(shop)).status_code == 404
    assert client.post_form(url(shop, "news", "toggle"), {"enabled": "1"}).status_code == 404
    assert client.post_form(url(shop, "probe_base", "settings"), {"visits": "3"}).status_code == 404
    assert not enabled(shop, "news")

    other = make_merchant(name="Car Wash")
    client.post_form("/auth/logout")
    client.login(other.owner)
    assert client.get(url(shop)).status_code == 404
    assert client.post_form(url(shop, "news", "toggle"), {"enabled": "1"}, htmx=True).status_code == 404
    assert not enabled(shop, "news")


def test_anonymous_is_sent_to_sign_in(client, shop):
    response = client.get(url(shop))
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_unknown_plugin_is_404(client, shop):
    client.login(shop.owner)
    assert client.post_form(url(shop, "nope", "toggle"), {"enabled": "1"}).status_code == 404
    assert client.post_form(url(shop, "nope", "settings"), {}).status_code == 404


def test_requires_is_respected(client, shop):
    client.login(shop.owner)
    response = client.post_form(url(shop, "probe_addon", "toggle"), {"enabled": "1"}, htmx=True)
    assert form_status(response) == 409
    body = response.get_data(as_text=True)
    assert 'id="plugin-probe_addon"' in body and 'role="alert"' in body
    assert "needs Probe Base" in body
    assert not enabled(shop, "probe_addon")

    # Without JavaScript the whole page comes back with the message in the card.
    response = client.post_form(url(shop, "probe_addon", "toggle"), {"enabled": "1"})
    assert response.status_code == 409
    assert "needs Probe Base" in card_html(response.get_data(as_text=True), "probe_addon")

    assert client.post_form(url(shop, "probe_base", "toggle"), {"enabled": "1"}).status_code == 303
    assert client.post_form(url(shop, "probe_addon", "toggle"), {"enabled": "1"}).status_code == 303
    assert enabled(shop, "probe_addon")

    # The base cannot go while something enabled needs it.
    response = client.post_form(url(shop, "probe_base", "toggle"), {"enabled": "0"}, htmx=True)
    assert form_status(response) == 409
    assert "Probe Addon needs Probe Base" in response.get_data(as_text=True)
    assert enabled(shop, "probe_base")


def valid_settings(**changes) -> dict:
    form = {"visits": "7", "bonus": "12.50", "share": "15", "motto": "Hi", "note": "Line one\nLine two",
            "style": "bold", "greet": "1"}
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def test_settings_are_validated_and_saved(client, shop):
    client.login(shop.owner)
    before = plugin_settings(shop, "probe_base")

    response = client.post_form(url(shop, "probe_base", "settings"), valid_settings(visits="50"), htmx=True)
    assert form_status(response) == 422
    body = response.get_data(as_text=True)
    assert "<html" not in body and 'id="plugin-probe_base"' in body
    assert "Visits needed: at most 20." in body
    assert re.search(r'name="visits" value="50"[^>]*aria-invalid="true"', body)
    assert "<details class=\"plugin-settings\" open>" in body
    assert plugin_settings(shop, "probe_base") == before

    for bad in ({"bonus": "a lot"}, {"share": "101"}, {"style": "loud"}, {"motto": "x" * 21}):
        response = client.post_form(url(shop, "probe_base", "settings"), valid_settings(**bad))
        assert response.status_code == 422, bad
        assert 'aria-invalid="true"' in card_html(response.get_data(as_text=True), "probe_base")
    assert plugin_settings(shop, "probe_base") == before

    response = client.post_form(url(shop, "probe_base", "settings"), valid_settings(greet=None), htmx=True)
    assert response.status_code == 200
    assert "are saved" in response.get_data(as_text=True)
    assert plugin_settings(shop, "probe_base") == {
        "visits": 7, "bonus": 1250, "share": 15, "loud": False, "greet": False, "motto": "Hi",
        "note": "Line one\nLine two", "style": "bold",
    }
    # Saving settings does not switch the plugin on.
    assert not enabled(shop, "probe_base")
    page = client.get(url(shop)).get_data(as_text=True)
    base = card_html(page, "probe_base")
    assert 'name="bonus" value="12.50"' in base
    assert not re.search(r'name="greet" value="1" checked', base)

    response = client.post_form(url(shop, "probe_base", "settings"), valid_settings(loud="1"))
    assert response.status_code == 303
    assert plugin_settings(shop, "probe_base")["loud"] is True


def test_referral_rates_are_typed_and_shown_in_percent(app, client, make_merchant):
    from webapp.plugins import registry

    merchant = make_merchant()
    client.login(merchant.owner)
    base = f"/business/{merchant.slug}/marketplace"
    client.post_form(f"{base}/referrals/toggle", {"enabled": "1"})
    page = client.get(base).get_data(as_text=True)
    assert 'name="level1_bp" value="3"' in page and 'name="level3_bp" value="0.5"' in page
    form = {spec.name: str(spec.default) for spec in registry().meta("referrals").settings if spec.type != "bool"}
    form.update(level1_bp="2,5", level2_bp="1", level3_bp="0.25")
    assert client.post_form(f"{base}/referrals/settings", form).status_code == 303
    db.session.expire_all()
    saved = plugin_settings(db.session.get(type(merchant), merchant.id), "referrals")
    assert (saved["level1_bp"], saved["level2_bp"], saved["level3_bp"]) == (250, 100, 25)
    for bad in ("2.555", "abc", "51"):
        response = client.post_form(f"{base}/referrals/settings", {**form, "level1_bp": bad})
        assert response.status_code == 422, bad


def test_plugins_in_dependency_order_come_after_what_they_require():
    """The order every "switch everything on" uses (the demo, the bench, the test kit)."""
    import pluggy

    from webapp.plugins import PluginRegistry

    registry = PluginRegistry(pm=pluggy.PluginManager("order-test"))
    for module in (
        build_plugin("alpha", requires=("zulu",)),
        build_plugin("mike", requires=("alpha", "not_installed")),
        build_plugin("zulu"),
        build_plugin("loop_a", requires=("loop_b",)),
        build_plugin("loop_b", requires=("loop_a",)),
    ):
        registry.metas[module.PLUGIN.name] = module.PLUGIN
    order = registry.in_dependency_order()
    assert sorted(order) == ["alpha", "loop_a", "loop_b", "mike", "zulu"]
    assert order.index("zulu") < order.index("alpha") < order.index("mike")
