"""The offers plugin's hook implementations: owner page, wallet ("For you"), privacy export, demo."""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from plugins.offers import models as _models  # noqa: F401  (registers the tables)
from plugins.offers import services
from plugins.offers.views import bp
from webapp.plugin_api import (
    CustomerDataSection,
    NavItem,
    WalletSummaryLine,
    db,
    hookimpl,
    render_fragment,
    scratch,
)


@hookimpl
def neighbourly_register_blueprints(app):
    return [bp]


@hookimpl
def neighbourly_collect_nav_items(merchant, user):
    return [
        NavItem(
            _("Offers"),
            "offers.index",
            order=58,
            url_params={"merchant_slug": merchant.slug},
            owner_only=True,
            icon="gift",
        )
    ]


def _wallet_of(user_id: int) -> dict:
    """Every card's open offers, read once per page (one statement however many cards)."""
    cache = scratch("offers").setdefault("wallet", {})  # one read per page, however many cards
    if user_id not in cache:
        cache[user_id] = services.wallet_offers(db.session, user_id)
    return cache[user_id]


@hookimpl
def neighbourly_collect_wallet_summary(merchant, membership):
    waiting = [
        offer
        for offer, claimed in _wallet_of(membership.user_id).get(merchant.id, [])
        if not claimed
    ]
    if not waiting:
        return None
    return [
        WalletSummaryLine(
            key="offers",
            source=services.PLUGIN_NAME,
            order=35,
            tone="notice",
            url=url_for("wallet.card", membership_id=membership.id) + "#for-you",
            text=ngettext("%(num)d offer for you", "%(num)d offers for you", len(waiting)),
        )
    ]


@hookimpl
def neighbourly_tpl_wallet_card(merchant, membership):
    offers = _wallet_of(membership.user_id).get(merchant.id, [])
    if not offers:
        return None
    return render_fragment("offers/_wallet_card.html", merchant=merchant, offers=offers)


@hookimpl
def neighbourly_collect_customer_data(user):
    return CustomerDataSection(source="offers", data=services.customer_export(db.session, user.id))


@hookimpl
def neighbourly_demo_content(merchant, neighbours, session):
    from plugins.offers.demo import add_demo_offer

    add_demo_offer(session, merchant)


@hookimpl
def neighbourly_register_ledger_reasons():
    return list(services.LEDGER_REASONS)
