"""The customer's wallet: their own card code for the till and every loyalty card with history."""

from __future__ import annotations

from flask import Blueprint, abort, request
from flask_login import current_user, login_required

from webapp.errors import NotFound
from webapp.extensions import db
from webapp.plugins import hooks_for, load_enabled_plugins, sorted_by_order
from webapp.services import codes, memberships, points
from webapp.timezones import network_zone, use_network_zone
from webapp.web import render

bp = Blueprint("wallet", __name__, url_prefix="/wallet")

HISTORY_PER_PAGE = 25


@bp.route("/")
@login_required
def index():
    cards = memberships.wallet_cards(db.session, current_user.id, recent=1)  # the latest line only
    # Each card's plugin slot asks which plugins its merchant has on: one query for all of them.
    load_enabled_plugins([card.membership.merchant for card in cards])
    if cards:  # a customer's cards are on their street: its local times
        use_network_zone(cards[0].membership.merchant.network)
    zones = {card.membership.id: network_zone(card.membership.merchant.network) for card in cards}
    return render(
        "wallet/index.html",
        cards=cards,
        expiries=points.next_expiries(db.session, list(zones), zones),
        summaries={card.membership.id: card_summary(card.membership) for card in cards},
        card_code=current_user.card_code,
        card_code_display=codes.group(current_user.card_code),
    )


def card_summary(membership) -> list:
    """The short lines under a card in the wallet, from the core and the merchant's plugins."""
    merchant = membership.merchant
    return sorted_by_order(
        hooks_for(merchant).neighbourly_collect_wallet_summary(merchant=merchant, membership=membership)
    )


@bp.route("/cards/<int:membership_id>")
@login_required
def card(membership_id: int):
    """A card's page: its summary, every plugin's panel and the full points history; another
    customer's card answers 404."""
    try:
        membership = memberships.customer_membership(db.session, current_user.id, membership_id)
    except NotFound:
        abort(404)
    use_network_zone(membership.merchant.network)
    page = max(1, request.args.get("page", default=1, type=int) or 1)
    entries, page, pages = memberships.card_history(
        db.session, membership, page=page, per_page=HISTORY_PER_PAGE
    )
    return render(
        "wallet/card.html", block="history",
        summary=card_summary(membership),
        membership=membership, merchant=membership.merchant, entries=entries, page=page, pages=pages,
        expiries=points.next_expiries(
            db.session, [membership.id], {membership.id: network_zone(membership.merchant.network)}
        ),
    )
