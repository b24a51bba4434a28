"""Renamed hooks keep their old names working for a while: old implementations are still called
through the new name, and registering one warns."""

from __future__ import annotations

import types
import warnings

import pytest

from tests.contracts.plugin_kit import build_plugin
from tests.kit import enable_plugins
from webapp import core_hooks
from webapp.contracts import GrantedReward
from webapp.extensions import db
from webapp.plugins import DEPRECATED_HOOK_NAMES, create_registry, hooks_for

OLD_NAME_MESSAGE = "neighbourly_reward_recorded is deprecated"
granted_by: list[str] = []


def old_style_reward(merchant, user, key, reason, session):
    if not key.startswith("oldstyle:"):
        return None
    granted_by.append(f"old {key}")
    return GrantedReward(key=key, label="Old-style voucher", object_ref=f"oldstyle:{key}")


def new_style_reward(merchant, user, key, reason, session):
    if not key.startswith("newstyle:"):
        return None
    granted_by.append(f"new {key}")
    return GrantedReward(key=key, label="New-style voucher", object_ref=f"newstyle:{key}")


def _plugins():
    return [
        build_plugin("oldstyle", hooks={"neighbourly_reward_recorded": old_style_reward}),
        build_plugin("newstyle", hooks={"neighbourly_grant_reward": new_style_reward}),
    ]


def test_registering_an_implementation_of_the_old_name_warns_once():
    bare_app = types.SimpleNamespace(
        config={
            "PLUGINS": [],
            "LOAD_ENTRY_POINT_PLUGINS": False,
            "EXTRA_PLUGIN_OBJECTS": _plugins(),
        }
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = create_registry(bare_app, core_hooks)
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert [str(w.message) for w in deprecations] == [
        "neighbourly_reward_recorded is deprecated: implement neighbourly_grant_reward instead"
    ]
    assert "neighbourly_reward_recorded" in DEPRECATED_HOOK_NAMES["neighbourly_grant_reward"]
    assert reg.metas.keys() == {"oldstyle", "newstyle"}


@pytest.fixture
def app_overrides():
    granted_by.clear()
    return {"EXTRA_PLUGIN_OBJECTS": _plugins()}


@pytest.mark.filterwarnings(f"ignore:{OLD_NAME_MESSAGE}:DeprecationWarning")
def test_the_new_name_reaches_implementations_of_the_old_one(make_merchant, make_member):
    shop = make_merchant()
    member = make_member(shop)
    user = member.user

    def grant(key):
        return hooks_for(shop).neighbourly_grant_reward(
            merchant=shop,
            user=user,
            key=key,
            reason="Survey",
            session=db.session,
        )

    assert grant("oldstyle:1") is None  # installed, not enabled here
    for name in ("oldstyle", "newstyle"):
        enable_plugins(shop, name)
    assert grant("oldstyle:2").label == "Old-style voucher"
    assert grant("newstyle:3").label == "New-style voucher"
    assert grant("nobody:4") is None
    assert granted_by == ["old oldstyle:2", "new newstyle:3"]
    assert {"oldstyle", "newstyle"} <= set(hooks_for(shop).implementers("neighbourly_grant_reward"))
