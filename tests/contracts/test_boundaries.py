"""Boundaries: the core never imports plugins (nor the demo street or the bench), plugins never
import each other and reach the core only through ``webapp.plugin_api``, and plugin tables live in
their plugin's namespace with foreign keys only into the core."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from sqlalchemy import ForeignKey, MetaData, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.conftest import make_app
from webapp.extensions import db

ROOT = Path(__file__).resolve().parents[2]
# The core modules a plugin may import: the declared surface, nothing else.
PLUGIN_SURFACE = ("webapp.plugin_api",)
DYNAMIC_IMPORTS = ("import_module", "find_spec", "__import__")
# Packages built on the core that the core must never import (the app loads them by name).
OUTSIDE_CORE = ("plugins", "neighbourly_demo", "bench")


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file; relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from plugins import news`` imports the package plugins.news
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def core_violations(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)}:{line} imports {module}"
        for path in sorted((root / "webapp").rglob("*.py"))
        for line, module in imported_modules(path, root)
        if any(module == outside or module.startswith(outside + ".") for outside in OUTSIDE_CORE)
    ]


def core_imports(path: Path) -> list[tuple[int, str]]:
    """(line, core module) of every absolute import of ``webapp`` in a file, naming the most
    specific module: ``from webapp import outbox`` imports ``webapp.outbox``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "webapp")
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module == "webapp":
                found.extend((node.lineno, f"webapp.{alias.name}") for alias in node.names)
            elif node.module.split(".")[0] == "webapp":
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            # importlib.import_module("webapp.x"), find_spec("webapp.x"), __import__("webapp.x")
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            name = node.args[0].value
            if function in DYNAMIC_IMPORTS and isinstance(name, str) and name.split(".")[0] == "webapp":
                found.append((node.lineno, name))
    return found


def plugin_violations(root: Path) -> list[str]:
    problems = []
    for plugin_dir in sorted(p for p in (root / "plugins").iterdir() if (p / "__init__.py").exists()):
        own = f"plugins.{plugin_dir.name}"
        for path in sorted(plugin_dir.rglob("*.py")):
            for line, module in imported_modules(path, root):
                where = f"{path.relative_to(root)}:{line}"
                if module.startswith("plugins.") and not (module == own or module.startswith(own + ".")):
                    problems.append(f"{where} imports another plugin: {module}")
                if module == "plugins":
                    problems.append(f"{where} imports the plugins package")
            for line, module in core_imports(path):
                if module not in PLUGIN_SURFACE:
                    problems.append(f"{path.relative_to(root)}:{line} imports the core outside webapp.plugin_api: {module}")
    return problems


def plugin_api_names_used(root: Path) -> list[tuple[str, str]]:
    """(file:line, name) of every name a plugin imports from ``webapp.plugin_api``."""
    used = []
    for path in sorted((root / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module == "webapp.plugin_api":
                used.extend((f"{path.relative_to(root)}:{node.lineno}", alias.name) for alias in node.names)
    return used


def test_core_never_imports_plugins():
    assert list((ROOT / "webapp").rglob("*.py")), "core sources not found"
    assert core_violations(ROOT) == []


def test_plugins_import_only_themselves_and_the_core_surface():
    assert (ROOT / "plugins" / "news" / "hooks.py").exists()
    assert plugin_violations(ROOT) == []


def test_import_checks_can_fail(tmp_path):
    (tmp_path / "webapp" / "services").mkdir(parents=True)
    (tmp_path / "webapp" / "services" / "bad.py").write_text("import plugins.news.services\n")
    (tmp_path / "webapp" / "worse.py").write_text("from plugins import news\n")
    (tmp_path / "webapp" / "street.py").write_text("import neighbourly_demo\nimport importlib\n")
    (tmp_path / "webapp" / "seeded.py").write_text("from bench.seed import seed\n")
    for name in ("alpha", "beta"):
        (tmp_path / "plugins" / name).mkdir(parents=True)
        (tmp_path / "plugins" / name / "__init__.py").write_text("")
    (tmp_path / "plugins" / "alpha" / "hooks.py").write_text(
        "from plugins.beta import models\nfrom .. import beta\nfrom webapp.blueprints import business\n"
        "from . import models as mine\nfrom webapp.plugin_api import hookimpl\n"
        "from webapp.extensions import db\nimport webapp.extensions\nfrom webapp import outbox\n"
        "from webapp.plugins import hookimpl as old\nfrom webapp import plugin_api\nimport webapp.plugin_api\n"
        "def later():\n    from webapp.models import MerchantPlugin\n"
        "    return importlib.import_module('webapp.services.fulltext'), find_spec('webapp.plugin_api')\n"
    )
    core = core_violations(tmp_path)
    plugin = plugin_violations(tmp_path)
    assert {problem.split(" ")[0] for problem in core} == {
        "webapp/services/bad.py:1", "webapp/worse.py:1", "webapp/street.py:1", "webapp/seeded.py:1",
    }
    # Lines 1 (absolute) and 2 (relative) reach into beta.
    assert {problem.split(" ")[0] for problem in plugin if "another plugin" in problem} == {
        "plugins/alpha/hooks.py:1", "plugins/alpha/hooks.py:2",
    }
    # Views (3), the database handle (6, 7), a module through ``from webapp import`` (8), the old
    # home of hookimpl (9), a model imported inside a function (13) and a module imported by name
    # at run time (14) are all outside the surface; 4 is the plugin's own module and 5, 10 and 11
    # the surface itself.
    assert {problem.split(" ")[0] for problem in plugin if "outside webapp.plugin_api" in problem} == {
        f"plugins/alpha/hooks.py:{line}" for line in (3, 6, 7, 8, 9, 13, 14)
    }
    # Nothing else: the surface itself and the plugin's own modules pass.
    assert not any(f":{line} " in problem for problem in plugin for line in (4, 5, 10, 11))


def test_every_name_in_the_plugin_surface_exists():
    import webapp.plugin_api as surface

    assert len(surface.__all__) == len(set(surface.__all__)), "a name is listed twice"
    assert "db" in surface.__all__ and "hookimpl" in surface.__all__
    missing = [name for name in surface.__all__ if not hasattr(surface, name)]
    assert missing == []


def test_plugins_import_only_listed_names_from_the_surface():
    """A name that merely happens to be in plugin_api's namespace (an import it made) is not part
    of the surface; plugins import only what ``__all__`` lists."""
    import webapp.plugin_api as surface

    used = plugin_api_names_used(ROOT)
    assert {name for _where, name in used} >= {"hookimpl", "PluginMeta", "db"}
    assert [(where, name) for where, name in used if name not in surface.__all__] == []


def namespace_members_used(root: Path, namespaces) -> list[tuple[str, str, str]]:
    """(file:line, namespace, member) of every ``codes.X``-style use in a plugin file that imports
    that namespace from ``webapp.plugin_api``."""
    used = []
    for path in sorted((root / "plugins").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        imported = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "webapp.plugin_api"
            for alias in node.names
            if alias.name in namespaces
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported:
                used.append((f"{path.relative_to(root)}:{node.lineno}", node.value.id, node.attr))
    return used


def test_plugins_use_only_the_listed_members_of_the_surface_namespaces(tmp_path):
    from webapp.plugin_api import NAMESPACE_MEMBERS

    used = namespace_members_used(ROOT, NAMESPACE_MEMBERS)
    assert {namespace for _where, namespace, _member in used} == set(NAMESPACE_MEMBERS)
    assert [use for use in used if use[2] not in NAMESPACE_MEMBERS[use[1]]] == []
    # The check can fail: a member nobody listed.
    (tmp_path / "plugins" / "alpha").mkdir(parents=True)
    (tmp_path / "plugins" / "alpha" / "jobs.py").write_text(
        "from webapp.plugin_api import outbox\n\ndef sweep(session):\n    outbox.purge_done(session)\n"
    )
    assert namespace_members_used(tmp_path, NAMESPACE_MEMBERS) == [("plugins/alpha/jobs.py:4", "outbox", "purge_done")]


def test_the_enablement_table_stays_behind_the_surface():
    import webapp.plugin_api as surface

    assert "MerchantPlugin" not in surface.__all__
    assert not any("MerchantPlugin" in path.read_text() for path in (ROOT / "plugins").rglob("*.py"))


def test_the_plugin_surface_is_documented():
    """docs/plugins.md names every part of the surface, so a plugin author can read what exists."""
    import webapp.plugin_api as surface

    document = (ROOT / "docs" / "plugins.md").read_text()
    # Named in code: `money` or `money(amount, currency)`.
    assert [name for name in surface.__all__ if not re.search(rf"`{name}(`|\()", document)] == []
    listed = [f"{namespace}.{member}" for namespace, members in surface.NAMESPACE_MEMBERS.items() for member in members]
    assert [name for name in listed if f"`{name}`" not in document] == []


# --------------------------------------------------------------------------- tables


def plugin_of(module_name: str) -> str | None:
    parts = module_name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "plugins" else None


def table_problems(registry, metadata: MetaData, plugin_modules: dict[str, list]) -> list[str]:
    """Plugin tables must be named ``<plugin>_...`` and point only at core or own tables."""
    owner: dict[str, str] = {}  # table name -> "core" or plugin name
    for mapper in registry.mappers:
        plugin = plugin_of(mapper.class_.__module__)
        for table in mapper.tables:
            owner[table.name] = plugin or "core"
    for plugin, modules in plugin_modules.items():  # plain Table objects too
        for module in modules:
            for value in vars(module).values():
                if isinstance(value, Table) and value.metadata is metadata:
                    owner[value.name] = plugin
    problems = []
    for table in metadata.sorted_tables:
        plugin = owner.get(table.name, "core")
        if plugin == "core":
            continue
        if not table.name.startswith(f"{plugin}_"):
            problems.append(f"table {table.name} of plugin {plugin} is not prefixed '{plugin}_'")
        for foreign_key in table.foreign_keys:
            target = foreign_key.column.table.name
            if owner.get(target, "core") not in ("core", plugin):
                problems.append(f"{table.name} points at {target} of another plugin")
    return problems


def loaded_plugin_modules() -> dict[str, list]:
    modules: dict[str, list] = {}
    for name, module in list(sys.modules.items()):
        plugin = plugin_of(name)
        if plugin and module is not None:
            modules.setdefault(plugin, []).append(module)
    return modules


def test_plugin_tables_are_prefixed_and_point_only_at_the_core(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'tables.db'}")
    installed = set(app.extensions["neighbourly"].metas)
    assert "news" in installed
    tables = set(db.metadata.tables)
    assert "news_posts" in tables
    problems = table_problems(db.Model.registry, db.metadata, loaded_plugin_modules())
    assert problems == []


def test_the_table_check_can_fail():
    class Base(DeclarativeBase):
        pass

    class Card(Base):  # a core table
        __tablename__ = "cards"
        id: Mapped[int] = mapped_column(primary_key=True)

    class Stamp(Base):
        __tablename__ = "stamps"  # should be alpha_stamps
        id: Mapped[int] = mapped_column(primary_key=True)
        card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"))

    class Level(Base):
        __tablename__ = "beta_levels"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(20))

    class Badge(Base):
        __tablename__ = "alpha_badges"
        id: Mapped[int] = mapped_column(primary_key=True)
        level_id: Mapped[int] = mapped_column(ForeignKey("beta_levels.id"))  # into another plugin

    Card.__module__ = "webapp.models.cards"
    Stamp.__module__ = Badge.__module__ = "plugins.alpha.models"
    Level.__module__ = "plugins.beta.models"
    problems = table_problems(Base.registry, Base.metadata, {})
    assert sorted(problems) == [
        "alpha_badges points at beta_levels of another plugin",
        "table stamps of plugin alpha is not prefixed 'alpha_'",
    ]


# --------------------------------------------------------------------------- loading


def test_a_configured_but_missing_plugin_package_is_skipped(tmp_path, caplog):
    caplog.set_level("INFO", logger="webapp.plugins")
    app = make_app(
        f"sqlite:///{tmp_path / 'skip.db'}",
        PLUGINS=["plugins.news", "plugins.cross_marketing_not_here", "no_such_top_package.plugin"],
    )
    assert set(app.extensions["neighbourly"].metas) == {"news"}
    assert "plugins.cross_marketing_not_here is not present; skipped" in caplog.text


def test_the_built_in_list_loads_whatever_is_present(tmp_path):
    from webapp.config import BUILTIN_PLUGINS

    app = make_app(f"sqlite:///{tmp_path / 'builtin.db'}", PLUGINS=BUILTIN_PLUGINS)
    present = {
        name.split(".")[1] for name in BUILTIN_PLUGINS
        if (ROOT / "plugins" / name.split(".")[1] / "__init__.py").exists()
    }
    assert set(app.extensions["neighbourly"].metas) == present


def test_a_present_plugin_with_a_missing_dependency_fails_loudly(tmp_path, monkeypatch):
    package = tmp_path / "kit_pkg"
    (package / "newsy").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    # ``kit_pkg.new`` is a prefix of ``kit_pkg.newsy`` but a different, missing module.
    (package / "newsy" / "__init__.py").write_text("import kit_pkg.new  # noqa\n")
    (package / "third").mkdir()
    (package / "third" / "__init__.py").write_text("import a_dependency_nobody_installed  # noqa\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("kit_pkg.newsy", "kit_pkg.third"):
        with pytest.raises(ModuleNotFoundError):
            make_app(f"sqlite:///{tmp_path / 'broken.db'}", PLUGINS=[module])
    for name in [name for name in sys.modules if name.startswith("kit_pkg")]:
        monkeypatch.delitem(sys.modules, name)
