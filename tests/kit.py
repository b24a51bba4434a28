"""The test kit: switch plugins on and off, join and buy, through the real services.

One place for what tests used to define in five: ``enable_plugins`` acts as the merchant's real
owner (``merchant.owner``, the owner role row) through ``set_plugin_enabled``, so a test meets
the same checks an owner does in the marketplace (requirements first, owners only).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import MerchantPlugin
from webapp.plugins import registry
from webapp.services import memberships
from webapp.services import merchants as merchant_service
from webapp.services.purchases import PurchaseDraft, record_purchase


def enable_plugins(merchant, *names: str, **settings) -> None:
    """Switch ``names`` on for ``merchant`` as its owner, in the order given, then store
    ``settings`` (keys a plugin does not declare are ignored) over each plugin's current ones."""
    assert names, "name the plugins to switch on"
    for name in names:
        merchant_service.set_plugin_enabled(
            db.session, registry(), merchant, name, True, merchant.owner
        )
    if settings:
        for name in names:
            row = db.session.scalar(
                select(MerchantPlugin).where(
                    MerchantPlugin.merchant_id == merchant.id, MerchantPlugin.plugin_name == name
                )
            )
            known = {spec.name for spec in registry().meta(name).settings}
            row.settings = {
                **(row.settings or {}),
                **{k: v for k, v in settings.items() if k in known},
            }
        db.session.commit()


def disable_plugins(merchant, *names: str) -> None:
    """Switch ``names`` off for ``merchant`` as its owner (their data stays)."""
    assert names, "name the plugins to switch off"
    for name in names:
        merchant_service.set_plugin_enabled(
            db.session, registry(), merchant, name, False, merchant.owner
        )


def enable_every_plugin(merchant) -> list[str]:
    """Switch every installed plugin on for ``merchant``, requirements first; returns the names."""
    names = registry().in_dependency_order()
    if names:
        enable_plugins(merchant, *names)
    return names


def join(merchant, user, ref: str | None = None):
    """``user`` takes a card at ``merchant`` with consent (and a referral code, if given)."""
    membership, _ = memberships.join_merchant(
        db.session, user, merchant, consent_given=True, text_version="test", referral_code=ref
    )
    return membership


def buy(
    merchant,
    membership,
    amount: int,
    *,
    points: int = 0,
    key: str | None = None,
    when: datetime | None = None,
    cashier=None,
    **options,
):
    """Record a sale through ``record_purchase``; ``options`` with a value are plugin choices
    (a certificate code, a deal voucher). Returns the purchase."""
    draft = PurchaseDraft(
        membership_id=membership.id,
        amount=amount,
        points_to_use=points,
        idempotency_key=key or uuid.uuid4().hex,
        created_at=when,
        cashier_id=cashier.id if cashier else None,
        options={name: value for name, value in options.items() if value},
    )
    return record_purchase(db.session, merchant, membership, draft).purchase
