"""Boundaries: the core never imports plugins (nor the demo street or the bench), plugins never
import each other, and plugin tables live in their plugin's namespace with foreign keys only into
the core."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from sqlalchemy import ForeignKey, MetaData, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.conftest import make_app
from webapp.extensions import db

ROOT = Path(__file__).resolve().parents[2]
# Core internals a plugin has no business reaching into (views and the core's own hooks).
PRIVATE_CORE = ("webapp.blueprints", "webapp.core_hooks", "webapp.cli")
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
                if any(module == private or module.startswith(private + ".") for private in PRIVATE_CORE):
                    problems.append(f"{where} imports core internals: {module}")
    return problems


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
        "from . import models as mine\nfrom webapp.plugins import hookimpl\n"
    )
    core = core_violations(tmp_path)
    plugin = plugin_violations(tmp_path)
    assert {problem.split(" ")[0] for problem in core} == {
        "webapp/services/bad.py:1", "webapp/worse.py:1", "webapp/street.py:1", "webapp/seeded.py:1",
    }
    # Lines 1 (absolute) and 2 (relative) reach into beta, line 3 into core views; 4 and 5 are fine.
    assert {problem.split(" ")[0] for problem in plugin if "another plugin" in problem} == {
        "plugins/alpha/hooks.py:1", "plugins/alpha/hooks.py:2",
    }
    assert {problem.split(" ")[0] for problem in plugin if "core internals" in problem} == {
        "plugins/alpha/hooks.py:3"
    }
    assert not any(":4 " in problem or ":5 " in problem for problem in plugin)


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
