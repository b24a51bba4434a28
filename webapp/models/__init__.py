"""Core tables: networks, merchants, people, memberships, purchases, the points ledger, consents."""

from webapp.models.accounts import ConsentRecord, PasswordResetToken, User, UserSession
from webapp.models.imports import CustomerImport, CustomerImportRow
from webapp.models.integrations import ApiIdempotentResponse, ApiKey
from webapp.models.loyalty import (
    BirthdayBonus,
    CustomerMonthTotals,
    ExpiryReminder,
    LedgerEntry,
    Membership,
    MerchantWeeklyStats,
    PointsAdjustment,
    Purchase,
    PurchaseDecline,
    PurchaseItem,
    WelcomeBonusClaim,
)
from webapp.models.network import (
    Merchant,
    MerchantHours,
    MerchantPhoto,
    MerchantPlugin,
    Network,
    PriceItem,
    StaffInvitation,
    StaffRole,
)
from webapp.models.outbox import OutboxMessage
from webapp.models.search import SearchDocument
from webapp.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiIdempotentResponse",
    "ApiKey",
    "BirthdayBonus",
    "ConsentRecord",
    "ExpiryReminder",
    "CustomerImport",
    "CustomerImportRow",
    "LedgerEntry",
    "Membership",
    "Merchant",
    "MerchantHours",
    "MerchantPhoto",
    "MerchantPlugin",
    "CustomerMonthTotals",
    "MerchantWeeklyStats",
    "Network",
    "OutboxMessage",
    "PasswordResetToken",
    "PointsAdjustment",
    "PriceItem",
    "Purchase",
    "PurchaseDecline",
    "PurchaseItem",
    "SearchDocument",
    "StaffInvitation",
    "StaffRole",
    "User",
    "UserSession",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WelcomeBonusClaim",
]
