"""Levels earned by referred friends need the referrals plugin: gamification declares it on the
setting's choice (``SettingSpec.requires``) and the marketplace enforces it, instead of the plugin
checking another plugin's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.gamification import PLUGIN
from tests.kit import enable_plugins
from webapp.errors import Conflict, ValidationFailed
from webapp.extensions import db
from webapp.plugins import plugin_settings, registry, setting_usable
from webapp.services import merchants as merchant_service

FORM = {
    "basis": "referrals",
    "window": "lifetime",
    "neighbour_merchants": "3",
    "streak_months": "3",
}


def test_the_dependency_is_declared_not_checked_by_name():
    basis = next(spec for spec in PLUGIN.settings if spec.name == "basis")
    assert basis.requires == (("referrals", "referrals"),)
    folder = Path(__file__).resolve().parents[3] / "plugins" / "gamification"
    sources = " ".join(path.read_text(encoding="utf-8") for path in folder.rglob("*.py"))
    assert 'is_enabled(merchant, "referrals")' not in sources


def test_the_referrals_basis_needs_referrals_switched_on(make_merchant):
    shop = make_merchant()
    enable_plugins(shop, "gamification")
    with pytest.raises(ValidationFailed) as refused:
        merchant_service.save_plugin_settings(
            db.session, registry(), shop, "gamification", FORM, shop.owner
        )
    assert refused.value.details.get("field") == "basis"
    assert plugin_settings(shop, "gamification")["basis"] == "spend"

    enable_plugins(shop, "referrals")
    merchant_service.save_plugin_settings(
        db.session, registry(), shop, "gamification", FORM, shop.owner
    )
    assert plugin_settings(shop, "gamification")["basis"] == "referrals"
    assert setting_usable(shop, "gamification", "basis")

    # Referrals cannot be switched off while levels count referred friends ...
    with pytest.raises(Conflict):
        merchant_service.set_plugin_enabled(
            db.session, registry(), shop, "referrals", False, shop.owner
        )
    # ... and can once the levels count something else.
    merchant_service.save_plugin_settings(
        db.session, registry(), shop, "gamification", {**FORM, "basis": "spend"}, shop.owner
    )
    merchant_service.set_plugin_enabled(
        db.session, registry(), shop, "referrals", False, shop.owner
    )
    assert setting_usable(shop, "gamification", "basis")  # "spend" needs nothing


def test_switching_gamification_on_with_a_saved_referrals_basis_needs_referrals(make_merchant):
    shop = make_merchant()
    enable_plugins(shop, "referrals")
    merchant_service.save_plugin_settings(
        db.session, registry(), shop, "gamification", FORM, shop.owner
    )
    merchant_service.set_plugin_enabled(
        db.session, registry(), shop, "referrals", False, shop.owner
    )
    assert not setting_usable(shop, "gamification", "basis")
    with pytest.raises(Conflict):
        merchant_service.set_plugin_enabled(
            db.session, registry(), shop, "gamification", True, shop.owner
        )
