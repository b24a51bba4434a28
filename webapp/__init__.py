"""Neighbourly: a self-hosted loyalty network for neighbouring small businesses."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, has_request_context, request, session
from flask_login import current_user
from jinja2 import ChoiceLoader, FileSystemLoader

from webapp.config import Config, config_from_environment

PROJECT_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


def create_app(config: type[Config] | dict[str, Any] | None = None) -> Flask:
    """Build the app: config, extensions, plugins, core blueprints, plugin blueprints, globals."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        instance_relative_config=True,
    )
    _configure(app, config)
    _init_extensions(app)
    _init_plugins(app)
    _register_blueprints(app)
    _register_template_helpers(app)
    _register_error_handlers(app)
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Behind N reverse proxies the client address (rate limits) comes from X-Forwarded-For.
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    from webapp import cli

    cli.register(app)
    return app


def _configure(app: Flask, config: type[Config] | dict[str, Any] | None) -> None:
    base = config if isinstance(config, type) else config_from_environment()
    app.config.from_object(base)
    app.config.from_prefixed_env("NEIGHBOURLY")
    if isinstance(config, dict):
        app.config.update(config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        if app.config["ENV_NAME"] == "production":
            raise RuntimeError("Set NEIGHBOURLY_SECRET_KEY in production.")
        key_file = Path(app.instance_path) / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        app.config["SECRET_KEY"] = key_file.read_text().strip()
    url = app.config.get("DATABASE_URL") or f"sqlite:///{Path(app.instance_path) / 'neighbourly.db'}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(app.config, url)
    redis_url = app.config.get("REDIS_URL")
    app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
    app.config["MAIL_FILE_PATH"] = str(Path(app.instance_path) / "mail")
    app.config.setdefault("UPLOAD_FOLDER", str(Path(app.instance_path) / "uploads"))
    app.config.setdefault("CODE_HASH_KEY", app.config["SECRET_KEY"])
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).parent / "translations")


def _engine_options(config, url: str) -> dict[str, Any]:
    """Connections checked before use (a restarted database is picked up again) and bounded waits."""
    options: dict[str, Any] = {"pool_pre_ping": True, **(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})}
    if url.startswith("sqlite"):
        # How long a write waits for SQLite's lock before the request is answered with a 503.
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("timeout", float(config["DATABASE_BUSY_TIMEOUT_S"]))
        options["connect_args"] = connect_args
    if url.startswith("postgresql"):
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("connect_timeout", int(config["DATABASE_CONNECT_TIMEOUT_S"]))
        timeout = int(config["DATABASE_STATEMENT_TIMEOUT_MS"])
        if timeout:
            connect_args.setdefault("options", f"-c statement_timeout={timeout}")
        options["connect_args"] = connect_args
    return options


def _init_extensions(app: Flask) -> None:
    from webapp import mail as _mail_handlers  # noqa: F401 - registers the outbox's e-mail handler
    from webapp import tasks
    from webapp.extensions import babel, csrf, db, htmx, limiter, login_manager, mail, migrate
    from webapp.services.accounts import load_session_user

    if app.config.get("FAST_PASSWORD_HASHING"):
        from webapp.services import accounts

        accounts.use_fast_hashing_for_tests()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    tasks.configure(app)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def _load_user(session_id: str):
        return load_session_user(db.session, session_id)

    def select_locale() -> str:
        languages = list(app.config["LANGUAGES"])
        if not has_request_context():  # CLI and task worker: the default language
            return app.config["BABEL_DEFAULT_LOCALE"]
        if current_user and current_user.is_authenticated and current_user.locale in languages:
            return current_user.locale
        if session.get("locale") in languages:
            return session["locale"]
        return request.accept_languages.best_match(languages) or app.config["BABEL_DEFAULT_LOCALE"]

    from webapp.timezones import selected_timezone

    babel.init_app(app, locale_selector=select_locale, timezone_selector=selected_timezone)


def _init_plugins(app: Flask) -> None:
    from webapp import core_hooks
    from webapp.plugins import create_registry

    registry = create_registry(app, core_hooks)
    app.extensions["neighbourly"] = registry
    loaders = [app.jinja_loader]
    for module in registry.modules.values():
        if not getattr(module, "__file__", None):  # built in memory (tests)
            continue
        folder = Path(module.__file__).parent / "templates"
        if folder.is_dir():
            loaders.append(FileSystemLoader(str(folder)))
    app.jinja_loader = ChoiceLoader(loaders)
    from webapp import tasks

    tasks.register_periodic(app, registry)


def _register_blueprints(app: Flask) -> None:
    from webapp.blueprints import register_core_blueprints

    register_core_blueprints(app)
    registry = app.extensions["neighbourly"]
    for blueprints in registry.pm.hook.neighbourly_register_blueprints(app=app):
        for blueprint in blueprints or []:
            app.register_blueprint(blueprint)
    from webapp.api import register_plugin_apis

    register_plugin_apis(app, registry)


def _register_template_helpers(app: Flask) -> None:
    from webapp import templating

    templating.register(app)


def _register_error_handlers(app: Flask) -> None:
    from webapp.blueprints import errors

    errors.register(app)


def _plugin_version_locations(alembic_config):
    """Each plugin keeps its own Alembic branch in ``plugins/<name>/migrations/versions``."""
    from flask import current_app

    locations = [str(PROJECT_ROOT / "migrations" / "versions")]
    for module in current_app.extensions["neighbourly"].modules.values():
        if not getattr(module, "__file__", None):
            continue
        folder = Path(module.__file__).parent / "migrations" / "versions"
        if folder.is_dir():
            locations.append(str(folder))
    alembic_config.set_main_option("path_separator", "os")
    alembic_config.set_main_option("version_locations", os.pathsep.join(locations))
    return alembic_config


def _register_migration_config() -> None:
    from webapp.extensions import migrate

    if _plugin_version_locations not in migrate.configure_callbacks:
        migrate.configure(_plugin_version_locations)


_register_migration_config()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
