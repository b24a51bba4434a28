"""The core's surface for plugins: the one core module a plugin imports (a contract test enforces it).

Everything here is re-exported from where the core keeps it; the groups below say what each part
is for. A plugin that needs something else from the core asks for it to be added here (and to
docs/plugins.md), which keeps the surface a deliberate list rather than whatever a plugin reached.

``codes``, ``fulltext``, ``outbox`` and ``photos`` are modules whose functions read best
qualified (``codes.normalize``, ``fulltext.search``, ``outbox.add``, ``photos.reencode``);
plugins use only the members that :data:`NAMESPACE_MEMBERS` (and docs/plugins.md) list for them.
"""

# Grouped by purpose, not alphabetically: the groups are the documentation.
# ruff: noqa: I001

from __future__ import annotations

# --------------------------------------------------------------------------- the plugin platform
# Declaring a plugin, its hooks, settings and pages; per-merchant enablement and hook callers.
from webapp.plugins import (
    PluginMeta,
    SettingSpec,
    hookimpl,
    hooks_for,
    is_enabled,
    merchant_ids_with_plugin,
    merchant_plugin_blueprint,
    merchants_with_plugin,
    plugin_settings,
    render_fragment,
    scratch,
    setting_usable,
    sorted_by_order,
)

# --------------------------------------------------------------------------- hook contracts
# The small frozen dataclasses hooks return or receive (see docs/hooks.md).
from webapp.contracts import (
    CheckoutLine,
    CustomerDataSection,
    CustomerFact,
    DashboardPanel,
    EarnRate,
    EventType,
    GrantedReward,
    LedgerReason,
    LedgerReasonKind,
    NavItem,
    PurchaseAdjustment,
    ReceiptLine,
    RewardOption,
    SegmentCondition,
    WalletSummaryLine,
)

# --------------------------------------------------------------------------- errors
# Domain exceptions: raised by services, turned into a message and a 4xx by the core.
from webapp.errors import (
    Conflict,
    InsufficientPoints,
    NeighbourlyError,
    NotFound,
    PurchaseDeclined,
    RewardUnavailable,
    ValidationFailed,
)

# --------------------------------------------------------------------------- database
# The SQLAlchemy handle, dialect helpers (upserts, statements built per dialect), the UTC column
# type and clock; CSRF exemption and rate limits for plugin views.
from webapp.extensions import csrf, db, limiter, per_dialect, upsert_insert
from webapp.models.base import UTCDateTime, utcnow

# --------------------------------------------------------------------------- core models
# Core tables a plugin reads or points its foreign keys at. The enablement table is not among
# them: use merchants_with_plugin / merchant_ids_with_plugin.
from webapp.models import (
    ConsentRecord,
    LedgerEntry,
    Membership,
    Merchant,
    MerchantPhoto,
    PriceItem,
    Purchase,
    PurchaseItem,
    StaffRole,
    User,
)

# --------------------------------------------------------------------------- core services
# Memberships and consents, the points ledger, the sale's limits and rules, codes, full-text
# search and photos.
from webapp.rules import points_earned
from webapp.services import codes, fulltext, photos
from webapp.services.hours import open_around_the_clock
from webapp.services.ledger import Posting, post, week_start
from webapp.services.memberships import MARKETING, find_membership, has_consent, withdraw_consent
from webapp.services.purchases import MAX_AMOUNT

# --------------------------------------------------------------------------- pages
# Rendering a screen or its htmx block, the redirect after a mutation, staff-only merchant pages.
from webapp.web import public_url, render, see_other, staff_required

# --------------------------------------------------------------------------- JSON API
# A plugin's part of /api/v1: its blueprint, scopes, models and answers, the shared till redemption.
from webapp.api import (
    MAX_ID,
    ApiModel,
    IdempotencyHeader,
    PurchaseOut,
    api_answers,
    iso,
    json_response,
    plugin_api_blueprint,
    purchase_json,
    redeem_at_till,
    require_scope,
    spec,
)

# --------------------------------------------------------------------------- formatting
# Money and points in minor units, shown in the reader's locale; typed money parsed back.
from webapp.formatting import minor_to_decimal, money, parse_money, points, rate_number

# --------------------------------------------------------------------------- time zones
# Every date shown and every day/week/month boundary is in the network's time zone.
from webapp.timezones import (
    day_start,
    local_date,
    merchant_zone,
    month_start,
    network_zone,
    today,
    use_network_zone,
)

# --------------------------------------------------------------------------- CSV exports
# Spreadsheet-safe CSV answers, for people (localised) and for programs (minor units).
from webapp.csvfiles import CsvVariant, csv_response, csv_variant

# --------------------------------------------------------------------------- mail, outbox, tasks
# E-mail in the recipient's language, after-commit work through the outbox, webhook events,
# and the app a background task runs in.
from webapp import outbox
from webapp.mail import in_recipient_language, recipient_locale, send_email
from webapp.outbox import record_event
from webapp.unit_of_work import unit_of_work
from webapp.tasks import job, merchant_task

# --------------------------------------------------------------------------- PDF
# The one PDF renderer: a sandboxed, time-limited child process with a deny-by-default fetcher.
from webapp.pdf import PdfRefused, data_url, render_pdf


# The members of the module namespaces that plugins may use (the boundary test checks every
# ``codes.X``, ``fulltext.X``, ``outbox.X`` or ``photos.X`` a plugin writes against this).
NAMESPACE_MEMBERS: dict[str, frozenset[str]] = {
    "codes": frozenset(
        {
            "ALPHABET",
            "InvalidCode",
            "check_symbol",
            "generate",
            "group",
            "keyed_hash",
            "normalize",
            "token_hash",
        }
    ),
    "fulltext": frozenset({"index", "query_terms", "remove", "search"}),
    "outbox": frozenset({"add", "add_many", "handler", "record_event"}),
    "photos": frozenset({"Limits", "read_limited", "reencode"}),
}


# --------------------------------------------------------------------------- demo content
__all__ = [
    # the plugin platform
    "PluginMeta",
    "SettingSpec",
    "hookimpl",
    "hooks_for",
    "is_enabled",
    "merchant_ids_with_plugin",
    "merchant_plugin_blueprint",
    "merchants_with_plugin",
    "plugin_settings",
    "render_fragment",
    "scratch",
    "setting_usable",
    "sorted_by_order",
    # hook contracts
    "CheckoutLine",
    "CustomerDataSection",
    "CustomerFact",
    "DashboardPanel",
    "EarnRate",
    "EventType",
    "GrantedReward",
    "LedgerReason",
    "LedgerReasonKind",
    "NavItem",
    "PurchaseAdjustment",
    "ReceiptLine",
    "RewardOption",
    "SegmentCondition",
    "WalletSummaryLine",
    # errors
    "Conflict",
    "InsufficientPoints",
    "NeighbourlyError",
    "NotFound",
    "PurchaseDeclined",
    "RewardUnavailable",
    "ValidationFailed",
    # database
    "UTCDateTime",
    "csrf",
    "db",
    "limiter",
    "per_dialect",
    "upsert_insert",
    "utcnow",
    # core models
    "ConsentRecord",
    "LedgerEntry",
    "Membership",
    "Merchant",
    "MerchantPhoto",
    "PriceItem",
    "Purchase",
    "PurchaseItem",
    "StaffRole",
    "User",
    # core services
    "MARKETING",
    "MAX_AMOUNT",
    "Posting",
    "codes",
    "find_membership",
    "fulltext",
    "has_consent",
    "photos",
    "points_earned",
    "post",
    "week_start",
    "withdraw_consent",
    # pages
    "public_url",
    "render",
    "see_other",
    "staff_required",
    # JSON API
    "MAX_ID",
    "ApiModel",
    "IdempotencyHeader",
    "PurchaseOut",
    "api_answers",
    "iso",
    "json_response",
    "plugin_api_blueprint",
    "purchase_json",
    "redeem_at_till",
    "require_scope",
    "spec",
    # formatting
    "minor_to_decimal",
    "money",
    "parse_money",
    "points",
    "rate_number",
    # time zones
    "day_start",
    "local_date",
    "merchant_zone",
    "month_start",
    "network_zone",
    "today",
    "use_network_zone",
    # CSV exports
    "CsvVariant",
    "csv_response",
    "csv_variant",
    # transactions, mail, outbox, tasks
    "in_recipient_language",
    "job",
    "merchant_task",
    "outbox",
    "recipient_locale",
    "record_event",
    "send_email",
    "unit_of_work",
    # PDF
    "PdfRefused",
    "data_url",
    "render_pdf",
    # demo content
    "open_around_the_clock",
]
