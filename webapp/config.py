"""Configuration classes; every key can be overridden by a ``NEIGHBOURLY_<KEY>`` environment variable."""

from __future__ import annotations

import os
from datetime import timedelta

BUILTIN_PLUGINS = [
    "plugins.news",
    "plugins.cross_marketing",
    "plugins.gamification",
    "plugins.referrals",
    "plugins.surveys",
    "plugins.letters",
    "plugins.group_deals",
    "plugins.concierge",
    "plugins.offers",
]


class Config:
    """Development defaults: SQLite in the instance folder, e-mail written to files."""

    SECRET_KEY: str | None = None  # generated into the instance folder when unset
    DATABASE_URL: str | None = None  # default: sqlite:///<instance>/neighbourly.db
    REDIS_URL: str | None = None
    PLUGINS: list[str] = BUILTIN_PLUGINS
    # Modules outside the core whose ``register(app)`` adds CLI commands (``flask demo``);
    # imported by name, skipped when not installed.
    CLI_COMMANDS: list[str] = ["neighbourly_demo.cli"]
    ENV_NAME = "development"

    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    # Sessions and CSRF: tokens live as long as the session, so a till left open still submits.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    SESSION_COOKIE_NAME = "neighbourly_session"
    PERMANENT_SESSION_LIFETIME = timedelta(days=30)
    REMEMBER_COOKIE_DURATION = timedelta(days=30)
    WTF_CSRF_TIME_LIMIT = None
    WTF_CSRF_HEADERS = ["X-CSRFToken"]

    # Passwords: argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile).
    LOGIN_RATE_LIMIT = "10 per minute;50 per hour"
    RATELIMIT_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = True
    # Redis holds only counters: when it is unreachable, count in this process (with a warning in
    # the log) and go back to Redis once it answers, instead of failing sign-ins and sales.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}

    # The database: connections are checked before use, so the first request after a restart
    # works; a statement running longer than this is cancelled (PostgreSQL) and its sale rolled
    # back, so a hanging plugin cannot hold a till (SQLite waits at most its busy timeout).
    DATABASE_STATEMENT_TIMEOUT_MS = 15000
    # Rendered street searches kept per process for the rest of their minute, dropped when this
    # process commits a catalogue change (webapp.services.street_cache); 0 switches them off.
    STREET_CACHE_SIZE = 256
    DATABASE_CONNECT_TIMEOUT_S = 5
    DATABASE_BUSY_TIMEOUT_S = 15  # SQLite: how long a write waits for another one's lock

    # The outbox relay in the worker: how often it looks for follow-up work no request could hand
    # to the queue, and how old such a row must be (its own request hands it over first).
    OUTBOX_RELAY_INTERVAL_SECONDS = 5
    OUTBOX_RELAY_GRACE_SECONDS = 30

    # Webhooks. Loopback (a receiver on this machine) and plain http are allowed in development
    # and tests only; in production a URL must be https and resolve only to public addresses.
    WEBHOOKS_ALLOW_LOOPBACK = True
    WEBHOOKS_CONNECT_TIMEOUT_S = 3
    WEBHOOKS_READ_TIMEOUT_S = 5
    WEBHOOKS_RETRY_HOURS = 24  # a delivery is retried with backoff until it is this old
    WEBHOOKS_DISABLE_AFTER_HOURS = 24  # an endpoint failing this long is disabled, its owner told
    WEBHOOKS_OLD_SECRET_HOURS = 24  # after a rotation the old secret also signs this long

    MAIL_BACKEND = "file"  # "file" (instance/mail), "smtp", or "locmem" in tests
    MAIL_SERVER = "localhost"
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_DEFAULT_SENDER = "Neighbourly <no-reply@neighbourly.local>"

    TASKS_IMMEDIATE = False  # run queued tasks in-process (tests)
    TASKS_DB: str | None = None  # the queue's SQLite file when REDIS_URL is not set (instance/tasks.db)
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024
    MAX_PHOTO_BYTES = 5 * 1024 * 1024
    IMPORT_MAX_BYTES = 20 * 1024 * 1024  # a customer CSV (100,000 customers is about 8 MB)
    MAX_PHOTO_PIXELS = 40_000_000

    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "UTC"
    LANGUAGES = {"en": "English", "ru": "Русский", "kk": "Қазақша", "bg": "Български"}

    PUBLIC_URL = "http://127.0.0.1:5000"
    TRUSTED_PROXIES = 0  # reverse proxies in front whose X-Forwarded-* headers are trusted
    CONSENT_TEXT_VERSION = "2026-11-01"


class ProductionConfig(Config):
    """Production: secure cookies; the secret key and database must come from the environment."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    MAIL_BACKEND = "smtp"
    WEBHOOKS_ALLOW_LOOPBACK = False


class TestConfig(Config):
    """Tests: tasks run in-process, e-mail kept in memory, limits on unless a test turns them off."""

    ENV_NAME = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key"  # noqa: S105 - tests only
    MAIL_BACKEND = "locmem"
    TASKS_IMMEDIATE = True
    PUBLIC_URL = "http://localhost"
    FAST_PASSWORD_HASHING = True
    RATELIMIT_ENABLED = True
    LOAD_ENTRY_POINT_PLUGINS = False


def config_from_environment() -> type[Config]:
    """Pick the configuration class named by ``NEIGHBOURLY_ENV`` (development by default)."""
    name = os.environ.get("NEIGHBOURLY_ENV", "development")
    return {"production": ProductionConfig, "test": TestConfig}.get(name, Config)
