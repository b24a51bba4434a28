"""The plugin platform: hook markers, plugin metadata, the manager and per-merchant hook callers."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy
from flask import Blueprint, abort, current_app, g, render_template, request
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import bindparam, select

from webapp import hookspecs
from webapp.errors import ValidationFailed
from webapp.unit_of_work import current as current_unit

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Select
    from sqlalchemy.orm import Session

    from webapp.models import Merchant

log = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("neighbourly")

ENTRY_POINT_GROUP = "neighbourly.plugins"
CORE_PLUGIN_NAME = "core"

SETTING_TYPES = ("int", "money", "percent", "basis_points", "bool", "str", "text", "choice")


@dataclass(frozen=True)
class SettingSpec:
    """One setting a plugin declares; the marketplace builds and validates its form from this."""

    name: str
    type: str
    label: str
    default: Any = None
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    min: int | None = None
    max: int | None = None
    max_length: int = 200
    # (choice, plugin): choosing that value needs that plugin switched on, like ``PluginMeta.requires``
    # for the whole plugin (a status level earned by referred friends needs referrals).
    requires: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.type not in SETTING_TYPES:
            raise ValueError(f"unknown setting type {self.type!r} for {self.name!r}")

    def parse(self, raw: str | None) -> Any:
        """Turn submitted form text into a typed value, or raise ``ValidationFailed``.

        ``money`` is taken in minor units here; the marketplace converts what the owner typed.
        ``basis_points`` is stored as basis points (250) and typed as a percentage ("2.5").
        The error names the setting (``details["field"]``) so a form can show it at the input.
        """
        if self.type == "bool":
            return raw in ("1", "on", "true", "yes")
        raw = (raw or "").strip()
        if self.type in ("str", "text"):
            if len(raw) > self.max_length:
                raise self._invalid(
                    _("%(label)s: at most %(count)s characters.", label=self.label, count=self.max_length)
                )
            return raw
        if self.type == "choice":
            allowed = {value for value, _label in self.choices}
            if raw not in allowed:
                raise self._invalid(_("%(label)s: choose one of the offered values.", label=self.label))
            return raw
        if self.type == "basis_points":
            return self._parse_basis_points(raw)
        try:
            value = int(raw)
        except ValueError:
            raise self._invalid(_("%(label)s: enter a whole number.", label=self.label)) from None
        low = 0 if self.type in ("money", "percent") and self.min is None else self.min
        high = 100 if self.type == "percent" and self.max is None else self.max
        if low is not None and value < low:
            raise self._invalid(_("%(label)s: at least %(low)s.", label=self.label, low=low))
        if high is not None and value > high:
            raise self._invalid(_("%(label)s: at most %(high)s.", label=self.label, high=high))
        return value

    def _parse_basis_points(self, raw: str) -> int:
        from decimal import Decimal, InvalidOperation

        try:
            percent = Decimal(raw.replace(",", ".").rstrip("%").strip())
            value = percent.scaleb(2)
            if not percent.is_finite() or value != value.to_integral_value():
                raise InvalidOperation
        except InvalidOperation:
            raise self._invalid(
                _("%(label)s: enter a percentage with at most two decimals, like 3 or 2.5.", label=self.label)
            ) from None
        value = int(value)
        low = 0 if self.min is None else self.min
        high = 10000 if self.max is None else self.max
        if not low <= value <= high:
            raise self._invalid(_("%(label)s: from %(low)s%% to %(high)s%%.", label=self.label,
                                  low=f"{low / 100:g}", high=f"{high / 100:g}"))
        return value

    def _invalid(self, message: str) -> ValidationFailed:
        return ValidationFailed(message, field=self.name)


@dataclass(frozen=True)
class PluginMeta:
    """What the marketplace shows about a plugin and what the platform needs to load it."""

    name: str
    title: str
    summary: str
    description: str = ""
    version: str = "0.1.0"
    category: str = "engagement"
    icon: str = "puzzle"
    requires: tuple[str, ...] = ()
    settings: tuple[SettingSpec, ...] = ()
    adds: tuple[str, ...] = ()  # what it adds, in plain words, for the marketplace card
    author: str = "Neighbourly"

    def defaults(self) -> dict[str, Any]:
        return {spec.name: spec.default for spec in self.settings}


@dataclass
class PluginRegistry:
    """The app's plugin manager and the metadata of every installed plugin."""

    pm: pluggy.PluginManager
    metas: dict[str, PluginMeta] = field(default_factory=dict)
    modules: dict[str, ModuleType] = field(default_factory=dict)

    def installed(self) -> list[PluginMeta]:
        return sorted(self.metas.values(), key=lambda meta: (meta.category, meta.title))

    def meta(self, name: str) -> PluginMeta | None:
        return self.metas.get(name)

    def in_dependency_order(self) -> list[str]:
        """Every installed plugin's name, each after the plugins it ``requires`` (by name
        otherwise): the order in which switching them all on succeeds. A requirement that is
        not installed is left out; a cycle is broken where it closes."""
        ordered: list[str] = []

        def visit(name: str, seen: tuple[str, ...] = ()) -> None:
            if name in ordered or name not in self.metas or name in seen:
                return
            for needed in self.metas[name].requires:
                visit(needed, (*seen, name))
            ordered.append(name)

        for name in sorted(self.metas):
            visit(name)
        return ordered


def _load_plugin_module(module_name: str) -> tuple[PluginMeta, ModuleType]:
    package = importlib.import_module(module_name)
    meta = getattr(package, "PLUGIN", None)
    if not isinstance(meta, PluginMeta):
        raise RuntimeError(f"{module_name} does not export PLUGIN = PluginMeta(...)")
    try:
        hooks_module = importlib.import_module(f"{module_name}.hooks")
    except ModuleNotFoundError as error:
        if error.name != f"{module_name}.hooks":
            raise
        hooks_module = package
    return meta, hooks_module


def create_registry(app: Flask, core_hooks: ModuleType) -> PluginRegistry:
    """Build the plugin manager: specs, the core's own hooks, configured and entry-point plugins."""
    pm = pluggy.PluginManager("neighbourly")
    pm.add_hookspecs(hookspecs)
    pm.register(core_hooks, name=CORE_PLUGIN_NAME)
    registry = PluginRegistry(pm=pm)

    def add(meta: PluginMeta, module: ModuleType) -> None:
        if meta.name in registry.metas or meta.name == CORE_PLUGIN_NAME:
            raise RuntimeError(f"two plugins are named {meta.name!r}")
        pm.register(module, name=meta.name)
        registry.metas[meta.name] = meta
        registry.modules[meta.name] = module

    for module_name in app.config.get("PLUGINS", []):
        try:
            meta, module = _load_plugin_module(module_name)
        except ModuleNotFoundError as error:
            # Skip only when the plugin package itself (or its parent) is absent: a present
            # plugin with a missing dependency must fail loudly, not vanish from the marketplace.
            if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
                log.info("plugin %s is not present; skipped", module_name)
                continue
            raise
        add(meta, module)
    if app.config.get("LOAD_ENTRY_POINT_PLUGINS", True):
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.value in app.config.get("PLUGINS", []):
                continue
            meta, module = _load_plugin_module(entry_point.value)
            add(meta, module)
    for extra in app.config.get("EXTRA_PLUGIN_OBJECTS", []):  # tests: throw-away plugins
        add(extra.PLUGIN, extra)
    pm.check_pending()
    return registry


def registry() -> PluginRegistry:
    """The current app's plugin registry."""
    return current_app.extensions["neighbourly"]


def enabled_plugin_names(merchant: Merchant) -> frozenset[str]:
    """Names of the plugins switched on for ``merchant``, read once per session and instance
    (``webapp.unit_of_work``).

    The same statement reads the merchant's plugin settings, kept for the transaction like
    ``plugin_settings`` keeps them: a sale needs both, and pays for one statement.
    """
    from webapp.extensions import db

    session = db.session()
    state = current_unit(session).merchant(merchant)
    if state.enabled is not None:
        return state.enabled
    session.flush()  # pending changes first, as the ORM query this replaces did
    _load_plugin_rows(session, merchant)
    return state.enabled


def load_enabled_plugins(merchants: list[Merchant]) -> None:
    """Read the enabled plugins and the plugin settings of many merchants with one query (pages
    listing several cards: each card's slots would otherwise read its merchant's settings)."""
    from webapp.extensions import db

    _watch_plugin_rows()
    session = db.session()
    unit = current_unit(session)
    pending = {m.id: m for m in merchants if unit.merchant(m).settings is None}
    if not pending:
        return
    session.flush()  # pending changes first, as ``enabled_plugin_names`` does
    rows: dict[int, list] = {merchant_id: [] for merchant_id in pending}
    for merchant_id, name, settings, enabled in session.connection().execute(
        _many_plugin_rows_statement(), {"merchant_ids": list(pending)}
    ):
        rows[merchant_id].append((name, settings, enabled))
    for merchant_id, merchant in pending.items():
        remember_plugin_rows(session, merchant, rows[merchant_id])


@lru_cache(maxsize=1)
def _many_plugin_rows_statement():
    """Every plugin row of a list of merchants; built once (the wallet runs it on every visit)."""
    from webapp.models import MerchantPlugin

    table = MerchantPlugin.__table__
    return select(table.c.merchant_id, table.c.plugin_name, table.c.settings, table.c.enabled).where(
        table.c.merchant_id.in_(bindparam("merchant_ids", expanding=True))
    )


def forget_enabled_cache(merchant: Merchant) -> None:
    """Read the merchant's plugins again on next use (as a new request would)."""
    from webapp.extensions import db

    current_unit(db.session()).forget_merchant(merchant.id)


def is_enabled(merchant: Merchant, plugin_name: str) -> bool:
    return plugin_name in enabled_plugin_names(merchant)


def merchant_ids_with_plugin(plugin_name: str) -> Select:
    """A SELECT of the ids of the merchants that have ``plugin_name`` switched on, to compose into
    a larger statement (``Merchant.id.in_(merchant_ids_with_plugin("news"))``) instead of reading
    the enablement table directly."""
    from webapp.models import MerchantPlugin

    return select(MerchantPlugin.merchant_id).where(
        MerchantPlugin.plugin_name == plugin_name, MerchantPlugin.enabled.is_(True)
    )


def merchants_with_plugin(session: Session, plugin_name: str, *, active_only: bool = True) -> list[Merchant]:
    """The merchants that have ``plugin_name`` switched on, in id order (periodic jobs walk them);
    only active ones unless ``active_only`` is false."""
    from webapp.models import Merchant

    statement = select(Merchant).where(Merchant.id.in_(merchant_ids_with_plugin(plugin_name)))
    if active_only:
        statement = statement.where(Merchant.status == "active")
    return list(session.scalars(statement.order_by(Merchant.id)))


def required_by_settings(meta: PluginMeta, values: dict[str, Any]) -> list[str]:
    """Plugins that the chosen setting values of ``meta`` need switched on (``SettingSpec.requires``)."""
    needed: list[str] = []
    for spec in meta.settings:
        for choice, plugin_name in spec.requires:
            if values.get(spec.name) == choice and plugin_name not in needed:
                needed.append(plugin_name)
    return needed


def setting_usable(merchant: Merchant, plugin_name: str, setting_name: str) -> bool:
    """Whether the merchant's value of a plugin's setting has what it requires switched on.

    The marketplace refuses to save such a value or switch the required plugin off, so this is
    false only for settings saved before the requirement was declared.
    """
    meta = registry().meta(plugin_name)
    if meta is None:
        return False
    value = plugin_settings(merchant, plugin_name).get(setting_name)
    return all(
        is_enabled(merchant, needed)
        for spec in meta.settings if spec.name == setting_name
        for choice, needed in spec.requires if choice == value
    )


# Hooks renamed since plugins were written against them: new name -> the old names still honoured.
# Their specs stay (marked ``warn_on_impl``, so registering an old implementation warns once);
# calling the new name reaches the old implementations after the new ones.
DEPRECATED_HOOK_NAMES: dict[str, tuple[str, ...]] = {
    "neighbourly_grant_reward": ("neighbourly_reward_recorded",),
}


class _WithDeprecatedNames:
    """A hook caller that also calls the implementations of a hook's deprecated names.

    First-result hooks answer with the first non-``None`` result, new names first; others
    return every result, new names first.
    """

    def __init__(self, callers: list[Any]) -> None:
        self._callers = callers
        self._firstresult = bool(callers[0].spec and callers[0].spec.opts.get("firstresult"))

    def get_hookimpls(self) -> list:
        return [impl for caller in self._callers for impl in caller.get_hookimpls()]

    def __call__(self, **kwargs: Any) -> Any:
        results: list = []
        for caller in self._callers:
            if not caller.get_hookimpls():
                continue
            result = caller(**kwargs)
            if self._firstresult:
                if result is not None:
                    return result
            else:
                results.extend(result)
        return None if self._firstresult else results


class MerchantHooks:
    """Hook callers that reach only the core and the plugins enabled for one merchant."""

    def __init__(self, reg: PluginRegistry, enabled: frozenset[str]) -> None:
        self._pm = reg.pm
        self._removed = [
            module for name, module in reg.modules.items() if name not in enabled
        ]
        self._callers: dict[str, Any] = {}
        self._implementers: dict[str, tuple[str, ...]] = {}

    def implementers(self, hook_name: str) -> tuple[str, ...]:
        """Names of the plugins (``core`` included) whose implementation of ``hook_name`` these
        callers reach, in pluggy's order; empty when calling it would do nothing."""
        names = self._implementers.get(hook_name)
        if names is None:
            names = tuple(impl.plugin_name for impl in getattr(self, hook_name).get_hookimpls())
            self._implementers[hook_name] = names
        return names

    def __getattr__(self, hook_name: str):
        if not hook_name.startswith("neighbourly_"):
            raise AttributeError(hook_name)
        caller = self._callers.get(hook_name)
        if caller is None:
            caller = self._caller(hook_name)
            old_names = DEPRECATED_HOOK_NAMES.get(hook_name)
            if old_names:
                callers = [caller] + [self._caller(name) for name in old_names]
                if any(old.get_hookimpls() for old in callers[1:]):
                    caller = _WithDeprecatedNames(callers)
            self._callers[hook_name] = caller
        return caller

    def _caller(self, hook_name: str):
        if self._removed:
            return self._pm.subset_hook_caller(hook_name, remove_plugins=self._removed)
        return getattr(self._pm.hook, hook_name)


def hooks_for(merchant: Merchant) -> MerchantHooks:
    """Hooks to call for ``merchant``: plugins it has not enabled never run."""
    from webapp.extensions import db

    enabled = enabled_plugin_names(merchant)
    state = current_unit(db.session()).merchant(merchant)
    hooks = state.hooks.get(enabled)
    if hooks is None:
        hooks = state.hooks[enabled] = MerchantHooks(registry(), enabled)
    return hooks


def scratch(plugin_name: str) -> dict[str, Any]:
    """A plugin's scratch space: somewhere to keep what several hook calls of one page would
    otherwise read again (every wallet card asking for the same customer's offers). It lasts for
    the current request (a page may commit midway, e.g. to note an offer was seen) or, outside
    one, for the current transaction (``webapp.unit_of_work``). Only an installed plugin has one."""
    from flask import has_request_context

    from webapp.extensions import db

    if plugin_name not in registry().metas:
        raise LookupError(f"no installed plugin {plugin_name!r} to keep scratch space for")
    if has_request_context():
        # On the request itself: an app context (``g``) can outlive several requests in tests.
        spaces = request._get_current_object().__dict__.setdefault("neighbourly_scratch", {})
        return spaces.setdefault(plugin_name, {})
    return current_unit(db.session()).scratch(plugin_name)


def only_plugin(name: str) -> MerchantHooks:
    """Hooks of one plugin alone (used for ``plugin_enabled``/``plugin_disabled`` callbacks)."""
    reg = registry()
    hooks = MerchantHooks(reg, frozenset({name}))
    hooks._removed.append(reg.pm.get_plugin(CORE_PLUGIN_NAME))
    return hooks


def plugin_settings(merchant: Merchant, plugin_name: str) -> dict[str, Any]:
    """A plugin's settings for a merchant: declared defaults overlaid with what the owner saved.

    A sale reads the settings of every plugin it runs, so one query reads those of all the
    merchant's plugins and the answer is kept for the rest of the transaction
    (``webapp.unit_of_work``). Pending changes are flushed first (as the ORM query this replaces
    did); writing a plugin row, a commit or a rollback makes the next call read again.
    """
    meta = registry().meta(plugin_name)
    values = meta.defaults() if meta else {}
    saved = _saved_settings(merchant).get(plugin_name)
    if saved:
        values.update({key: value for key, value in saved.items() if key in values})
    return values


_settings_statement = None  # built on first use (the models import this module's package)


def _plugin_row_written(mapper, connection, target) -> None:
    from sqlalchemy.orm import object_session

    session = object_session(target)
    if session is not None:
        current_unit(session).plugin_row_written(target.merchant_id)


_watching = False


def _watch_plugin_rows() -> None:
    """Listen for plugin rows written through the ORM (before anything about them is kept)."""
    global _watching
    if _watching:
        return
    from sqlalchemy import event

    from webapp.models import MerchantPlugin

    for name in ("after_insert", "after_update", "after_delete"):
        event.listen(MerchantPlugin, name, _plugin_row_written)
    _watching = True


def _saved_settings(merchant: Merchant) -> dict[str, dict]:
    from webapp.extensions import db

    session = db.session()
    session.flush()  # may write a plugin row, which forgets what was read
    state = current_unit(session).merchant(merchant)
    if state.settings is None:
        _load_plugin_rows(session, merchant)
    return state.settings


def _load_plugin_rows(session, merchant: Merchant) -> None:
    """Read (name, settings, enabled) of every plugin row of ``merchant`` in one Core statement
    into the unit of work: the enabled names (if not known yet) and this transaction's settings.
    The caller has flushed pending changes."""
    global _settings_statement
    if _settings_statement is None:
        from webapp.models import MerchantPlugin

        _watch_plugin_rows()
        table = MerchantPlugin.__table__
        _settings_statement = select(table.c.plugin_name, table.c.settings, table.c.enabled).where(
            table.c.merchant_id == bindparam("merchant_id")
        )
    rows = session.connection().execute(_settings_statement, {"merchant_id": merchant.id}).all()
    _keep(session, merchant, rows, enabled_too=False)


def _keep(session, merchant: Merchant, rows, *, enabled_too: bool) -> None:
    state = current_unit(session).merchant(merchant)
    state.settings = {name: settings or {} for name, settings, _enabled in rows}
    if enabled_too or state.enabled is None:
        installed = registry().metas
        state.enabled = frozenset(
            name for name, _settings, enabled in rows if enabled and name in installed
        )


def remember_plugin_rows(session, merchant: Merchant, rows) -> None:
    """Keep what ``enabled_plugin_names`` and ``plugin_settings`` would read for ``merchant`` from
    (name, settings, enabled) rows the caller read in this transaction with a statement of its
    own (a name of ``None``: no plugin row), so the request does not read them again. The
    caller had flushed pending changes."""
    _watch_plugin_rows()
    _keep(session, merchant, [row for row in rows if row[0] is not None], enabled_too=True)


def merchant_plugin_blueprint(plugin_name: str, import_name: str, **kwargs: Any) -> Blueprint:
    """A blueprint whose routes with a ``merchant_slug`` answer 404 unless the plugin is enabled.

    The loaded merchant is available to the view as ``g.plugin_merchant``.
    """
    blueprint = Blueprint(plugin_name, import_name, **kwargs)

    @blueprint.before_request
    def _require_enabled() -> None:
        from webapp.extensions import db
        from webapp.models import Merchant

        slug = (request.view_args or {}).get("merchant_slug")
        if slug is None:
            return
        merchant = db.session.scalar(select(Merchant).where(Merchant.slug == slug))
        if merchant is None or not is_enabled(merchant, plugin_name):
            abort(404)
        g.plugin_merchant = merchant

    return blueprint


def render_fragment(template: str, **context: Any) -> Markup:
    """HTML for a slot or panel from an autoescaped ``.html`` template (user text is escaped)."""
    return Markup(render_template(template, **context))  # noqa: S704 - autoescaped template output


def sorted_by_order(items: list) -> list:
    """Flatten pluggy's list-of-results and order by the contract objects' ``order`` field."""
    flat: list = []
    for result in items:
        if result is None:
            continue
        if isinstance(result, list | tuple):
            flat.extend(item for item in result if item is not None)
        else:
            flat.append(result)
    return sorted(flat, key=lambda item: getattr(item, "order", 100))
