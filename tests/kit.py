"""The test kit: switch plugins on and off, join and buy, through the real services.

One place for what tests used to define in five: ``enable_plugins`` acts as the merchant's real
owner (``merchant.owner``, the owner role row) through ``set_plugin_enabled``, so a test meets
the same checks an owner does in the marketplace (requirements first, owners only).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from webapp.extensions import db
from webapp.plugins import plugin_settings, registry
from webapp.services import memberships
from webapp.services import merchants as merchant_service
from webapp.services.purchases import PurchaseDraft, record_purchase


def enable_plugins(merchant, *names: str, **settings) -> None:
    """Switch ``names`` on for ``merchant`` as its owner, in the order given, then save
    ``settings`` for each plugin that declares them (``set_plugin_settings``)."""
    assert names, "name the plugins to switch on"
    for name in names:
        merchant_service.set_plugin_enabled(
            db.session, registry(), merchant, name, True, merchant.owner
        )
    if settings:
        for name in names:
            known = {spec.name for spec in registry().meta(name).settings}
            mine = {key: value for key, value in settings.items() if key in known}
            if mine:
                set_plugin_settings(merchant, name, **mine)


def set_plugin_settings(merchant, name: str, **settings) -> dict:
    """Save ``settings`` over the plugin's current ones as the owner's settings form would
    (``save_plugin_settings``: the same parsing, limits and checks). Values are typed as stored
    (basis points, minor units, booleans) and turned into the form's text here."""
    meta = registry().meta(name)
    unknown = set(settings) - {spec.name for spec in meta.settings}
    assert not unknown, f"{name} has no settings {sorted(unknown)}"
    values = {**plugin_settings(merchant, name), **settings}
    form = {spec.name: _form_text(spec, values[spec.name]) for spec in meta.settings}
    return merchant_service.save_plugin_settings(
        db.session, registry(), merchant, name, form, merchant.owner
    )


def _form_text(spec, value) -> str:
    if spec.type == "bool":
        return "on" if value else ""
    if spec.type == "basis_points":  # the form takes a percentage: 250 basis points is "2.50"
        return str(Decimal(int(value)).scaleb(-2))
    return str(value)


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
    lines=(),
    **options,
):
    """Record a sale through ``record_purchase``; ``options`` with a value are plugin choices
    (a certificate code, a deal voucher), ``lines`` the price-list items (``priced_lines``).
    Returns the purchase."""
    draft = PurchaseDraft(
        membership_id=membership.id,
        amount=amount,
        points_to_use=points,
        idempotency_key=key or uuid.uuid4().hex,
        created_at=when,
        cashier_id=cashier.id if cashier else None,
        options={name: value for name, value in options.items() if value},
        lines=tuple(lines),
    )
    return record_purchase(db.session, merchant, membership, draft).purchase
