"""Certificate offers, partnerships, issuing, redeeming, gifting, expiry and their economics.

One module per concept; every name is re-exported here, so ``from
plugins.cross_marketing.services import X`` keeps working.
"""

# The module's helpers, for code written against the single module (explicit re-exports).
from plugins.cross_marketing.services.base import (
    CODE_SYMBOLS,
    LIVE,
    MAX_DAYS,
    MAX_FACE_VALUE,
    PAGE_SIZE,
    PLUGIN_NAME,
    QR_PREFIX,
    CertificateRefused,
    TooManyAttempts,
    code_hash,
    display_code,
    extract_code,
    new_code,
    seal,
    unseal,
)
from plugins.cross_marketing.services.base import (
    _derive as _derive,
)
from plugins.cross_marketing.services.base import (
    _secret as _secret,
)
from plugins.cross_marketing.services.certificates import (
    _TILL_LOADS as _TILL_LOADS,
)
from plugins.cross_marketing.services.certificates import (
    REWARD_PREFIX,
    IssuedCertificate,
    find_for_till,
    issue_as_reward,
    issue_for_purchase,
    queue_issued_events,
    record_redemption,
    redeem_in_purchase,
    reward_options,
    undo_for_refund,
    write_events,
)
from plugins.cross_marketing.services.certificates import (
    _has_room as _has_room,
)
from plugins.cross_marketing.services.certificates import (
    _not_valid as _not_valid,
)
from plugins.cross_marketing.services.certificates import (
    _refusal as _refusal,
)
from plugins.cross_marketing.services.certificates import (
    _release_offer as _release_offer,
)
from plugins.cross_marketing.services.certificates import (
    _reward_label as _reward_label,
)
from plugins.cross_marketing.services.certificates import (
    _sql as _sql,
)
from plugins.cross_marketing.services.certificates import (
    _Statements as _Statements,
)
from plugins.cross_marketing.services.certificates import (
    _take_caps as _take_caps,
)
from plugins.cross_marketing.services.certificates import (
    _take_other_caps as _take_other_caps,
)
from plugins.cross_marketing.services.certificates import (
    _write_certificate as _write_certificate,
)
from plugins.cross_marketing.services.economics import (
    Flow,
    MonthFigures,
    PartnershipEconomics,
    Settlement,
    SettlementLine,
    economics,
    month_keys,
    network_flows,
    parse_month,
    settlement,
)
from plugins.cross_marketing.services.economics import (
    _apply as _apply,
)
from plugins.cross_marketing.services.economics import (
    _month_expression as _month_expression,
)
from plugins.cross_marketing.services.economics import (
    _sums as _sums,
)
from plugins.cross_marketing.services.holders import (
    Reminder,
    TillLink,
    attach,
    cancel_gift,
    certificate_by_code,
    certificates_at_till,
    certificates_for_card,
    certificates_received,
    claim_gift,
    create_gift_link,
    customer_export,
    detach,
    due_reminders,
    expire_certificates,
    forget_holder,
    gift_preview,
    gifts_cancelled,
    holder_certificate,
    holder_certificates,
    till_link_for_staff,
)
from plugins.cross_marketing.services.holders import (
    _token_hash as _token_hash,
)
from plugins.cross_marketing.services.offers import (
    OfferInput,
    clean_offer,
    create_offer,
    get_offer,
    issuer_offers,
    possible_distributors,
)
from plugins.cross_marketing.services.offers import (
    _count_field as _count_field,
)
from plugins.cross_marketing.services.offers import (
    _money_field as _money_field,
)
from plugins.cross_marketing.services.partnerships import (
    _TARGET as _TARGET,
)
from plugins.cross_marketing.services.partnerships import (
    _TRANSITIONS as _TRANSITIONS,
)
from plugins.cross_marketing.services.partnerships import (
    change_status,
    clean_rule,
    get_partnership,
    invite,
    merchant_partnerships,
    respond,
    set_rule,
)
from webapp.plugin_api import utcnow as utcnow  # callers read the clock as services.utcnow

__all__ = [
    "CODE_SYMBOLS",
    "CertificateRefused",
    "Flow",
    "IssuedCertificate",
    "LIVE",
    "MAX_DAYS",
    "MAX_FACE_VALUE",
    "MonthFigures",
    "OfferInput",
    "PAGE_SIZE",
    "PLUGIN_NAME",
    "PartnershipEconomics",
    "QR_PREFIX",
    "REWARD_PREFIX",
    "Reminder",
    "Settlement",
    "SettlementLine",
    "TooManyAttempts",
    "attach",
    "cancel_gift",
    "certificate_by_code",
    "certificates_at_till",
    "certificates_for_card",
    "certificates_received",
    "change_status",
    "claim_gift",
    "clean_offer",
    "clean_rule",
    "code_hash",
    "create_gift_link",
    "create_offer",
    "customer_export",
    "detach",
    "display_code",
    "due_reminders",
    "economics",
    "expire_certificates",
    "extract_code",
    "find_for_till",
    "forget_holder",
    "get_offer",
    "get_partnership",
    "gift_preview",
    "gifts_cancelled",
    "holder_certificate",
    "till_link_for_staff",
    "TillLink",
    "holder_certificates",
    "invite",
    "issue_as_reward",
    "issue_for_purchase",
    "queue_issued_events",
    "issuer_offers",
    "merchant_partnerships",
    "month_keys",
    "network_flows",
    "new_code",
    "parse_month",
    "possible_distributors",
    "record_redemption",
    "redeem_in_purchase",
    "respond",
    "reward_options",
    "seal",
    "set_rule",
    "settlement",
    "undo_for_refund",
    "unseal",
    "write_events",
]
