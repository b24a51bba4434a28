"""Template slots: a typo in a slot name fails loudly; known slots join enabled plugins' HTML."""

from __future__ import annotations

import pytest
from flask import current_app, render_template_string
from markupsafe import Markup

from tests.contracts.plugin_kit import build_plugin
from tests.kit import enable_plugins
from webapp.templating import SLOTS, slot


def banner(merchant):
    return Markup("<p class='probe-banner'>") + merchant.name + Markup("</p>")


@pytest.fixture
def app_overrides():
    return {"EXTRA_PLUGIN_OBJECTS": [build_plugin("banner", hooks={"neighbourly_tpl_merchant_page": banner})]}


def test_an_unknown_slot_name_raises(make_merchant):
    merchant = make_merchant()
    for name in ("merchant_pages", "wallet", "", "tpl_receipt", "MERCHANT_PAGE"):
        with pytest.raises(KeyError):
            slot(name, merchant)
        with current_app.test_request_context(), pytest.raises(KeyError):
            render_template_string("{{ slot(name, merchant) }}", name=name, merchant=merchant)


def test_a_known_slot_joins_what_enabled_plugins_contribute(make_merchant):
    merchant = make_merchant(name="Tom & Jerry's <Diner>")
    assert "merchant_page" in SLOTS
    with current_app.test_request_context():
        assert str(slot("merchant_page", merchant)) == ""
        enable_plugins(merchant, "banner")
        html = render_template_string("{{ slot('merchant_page', merchant) }}", merchant=merchant)
    # Plugin markup passes through; the merchant's own text inside it stays escaped.
    assert html == "<p class='probe-banner'>Tom &amp; Jerry&#39;s &lt;Diner&gt;</p>"


def test_an_unknown_network_slot_name_raises(app):
    from webapp.templating import network_slot

    for name in ("directories", "merchant_page", ""):
        with pytest.raises(KeyError):
            network_slot(name, None)
