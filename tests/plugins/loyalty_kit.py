"""Shared by the gamification and referrals tests: both plugins installed; enable, join and buy."""

from __future__ import annotations

import uuid

import pytest

from webapp.extensions import db
from webapp.plugins import registry
from webapp.services import memberships
from webapp.services import merchants as merchant_service
from webapp.services.purchases import PurchaseDraft, record_purchase


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.gamification", "plugins.referrals"]}


def enable(merchant, *names: str, **settings) -> None:
    for name in names:
        merchant_service.set_plugin_enabled(db.session, registry(), merchant, name, True, merchant.owner)
    if settings:
        from sqlalchemy import select

        from webapp.models import MerchantPlugin

        for name in names:
            row = db.session.scalar(select(MerchantPlugin).where(
                MerchantPlugin.merchant_id == merchant.id, MerchantPlugin.plugin_name == name))
            meta = registry().meta(name)
            known = {spec.name for spec in meta.settings}
            row.settings = {**(row.settings or {}), **{k: v for k, v in settings.items() if k in known}}
        db.session.commit()


def join(merchant, user, ref: str | None = None):
    membership, _ = memberships.join_merchant(
        db.session, user, merchant, consent_given=True, text_version="test", referral_code=ref
    )
    return membership


def buy(merchant, membership, amount: int = 100_000, key: str | None = None):
    draft = PurchaseDraft(membership_id=membership.id, amount=amount, points_to_use=0,
                          idempotency_key=key or uuid.uuid4().hex)
    return record_purchase(db.session, merchant, membership, draft).purchase
