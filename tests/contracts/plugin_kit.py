"""Throw-away plugins built inside a test and handed to ``create_app`` via EXTRA_PLUGIN_OBJECTS."""

from __future__ import annotations

import types
from collections.abc import Callable

from webapp.plugins import PluginMeta, SettingSpec, hookimpl, merchant_plugin_blueprint


def build_plugin(
    name: str,
    *,
    title: str | None = None,
    requires: tuple[str, ...] = (),
    settings: tuple[SettingSpec, ...] = (),
    hooks: dict[str, Callable] | None = None,
    with_page: bool = False,
) -> types.ModuleType:
    """A module-like plugin: ``PLUGIN`` metadata plus the given functions marked as hookimpls.

    ``with_page`` adds a merchant-scoped page at ``/business/<merchant_slug>/<name>/`` made with
    ``merchant_plugin_blueprint``, so it must answer 404 for merchants that have the plugin off.
    """
    module = types.ModuleType(f"throwaway_{name}")
    # The app factory looks for a templates folder next to each plugin module.
    module.__file__ = __file__
    module.PLUGIN = PluginMeta(
        name=name,
        title=title or f"Probe {name}",
        summary=f"Throw-away plugin {name} for a contract test.",
        category="testing",
        version="9.9.9",
        requires=requires,
        settings=settings,
        adds=(f"{name} line on the receipt",),
    )
    all_hooks = dict(hooks or {})
    if with_page:
        blueprint = merchant_plugin_blueprint(
            name, __name__, url_prefix=f"/business/<merchant_slug>/{name}"
        )

        @blueprint.route("/")
        def page(merchant_slug):
            return f"{name} page of {merchant_slug}"

        def neighbourly_register_blueprints(app):
            return [blueprint]

        all_hooks["neighbourly_register_blueprints"] = neighbourly_register_blueprints
    for hook_name, function in all_hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module
