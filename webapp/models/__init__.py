"""Core tables: networks, merchants, people, memberships, purchases, the points ledger, consents."""

from webapp.models.accounts import ConsentRecord, PasswordResetToken, User, UserSession
from webapp.models.imports import CustomerImport, CustomerImportRow
from webapp.models.integrations import ApiIdempotentResponse, ApiKey
from webapp.models.loyalty import (
    LedgerEntry,
    Membership,
    MerchantWeeklyStats,
    Purchase,
    PurchaseDecline,
)
from webapp.models.network import (
    Merchant,
    MerchantPhoto,
    MerchantPlugin,
    Network,
    StaffInvitation,
    StaffRole,
)
from webapp.models.outbox import OutboxMessage

__all__ = [
    "ApiIdempotentResponse",
    "ApiKey",
    "ConsentRecord",
    "CustomerImport",
    "CustomerImportRow",
    "LedgerEntry",
    "Membership",
    "Merchant",
    "MerchantPhoto",
    "MerchantPlugin",
    "MerchantWeeklyStats",
    "Network",
    "OutboxMessage",
    "PasswordResetToken",
    "Purchase",
    "PurchaseDecline",
    "StaffInvitation",
    "StaffRole",
    "User",
    "UserSession",
]
