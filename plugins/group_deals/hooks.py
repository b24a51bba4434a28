"""The group_deals plugin's hook implementations: pages, till, receipt, e-card, wallet, jobs, demo."""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from plugins.group_deals import models as _models  # noqa: F401  (registers the tables)
from plugins.group_deals import services
from plugins.group_deals.guard import failed_lookup_guard
from plugins.group_deals.views import bp
from webapp.plugin_api import (
    CheckoutLine,
    CustomerDataSection,
    DashboardPanel,
    NavItem,
    ReceiptLine,
    WalletSummaryLine,
    db,
    hookimpl,
    job,
    money,
    render_fragment,
    scratch,
)

_html = render_fragment


@hookimpl
def neighbourly_register_blueprints(app):
    return [bp]


@hookimpl
def neighbourly_register_api(app):
    from plugins.group_deals.api import api_bp

    return [api_bp]


@hookimpl
def neighbourly_collect_nav_items(merchant, user):
    return [
        NavItem(
            _("Group deals"), "group_deals.index", order=57, url_params={"merchant_slug": merchant.slug},
            owner_only=True, icon="users",
        )
    ]


# --------------------------------------------------------------------------- the till


@hookimpl
def neighbourly_collect_purchase_adjustments(merchant, membership, draft, session):
    # A sale whose form names no voucher runs no statement here (see find_for_till).
    voucher = services.find_for_till(
        session, merchant, membership, draft.options, on_failed_lookup=failed_lookup_guard
    )
    if voucher is None:
        return None
    return [services.redeem_in_purchase(session, merchant, voucher)]


@hookimpl
def neighbourly_purchase_recorded(merchant, purchase, membership, session, adjustments):
    services.record_redemption(session, purchase, adjustments)


@hookimpl
def neighbourly_purchase_refunded(merchant, purchase, session):
    if purchase.discount:  # only a discounted sale can have used a voucher
        services.undo_for_refund(session, purchase)


@hookimpl
def neighbourly_collect_checkout_lines(merchant, membership):
    currency = merchant.network.currency
    return [
        CheckoutLine(
            _("Group deal voucher: %(title)s", title=voucher.deal.title),
            _("%(quantity)s × %(price)s instead of %(regular)s, ends in %(last4)s",
              quantity=voucher.quantity, price=money(voucher.price, currency),
              regular=money(voucher.regular_price, currency),
              last4=services.voucher_code(voucher.nonce)[-4:]),
            order=42, source="group_deals",
        )
        for voucher in services.vouchers_at_till(db.session, merchant, membership.user_id)
    ]


@hookimpl
def neighbourly_tpl_checkout(merchant, membership):
    held = services.vouchers_at_till(db.session, merchant, membership.user_id)
    return _html("group_deals/_checkout.html", held=held, currency=merchant.network.currency,
                 code=services.voucher_code)


@hookimpl
def neighbourly_collect_receipt_lines(merchant, purchase):
    if not purchase.discount:  # no voucher without a discount: nothing to look up
        return None
    currency = merchant.network.currency
    return [
        ReceiptLine(
            _("Group deal “%(title)s”", title=voucher.deal.title),
            _("%(quantity)s × %(price)s (deal price)", quantity=voucher.quantity,
              price=money(voucher.price, currency)),
            order=17, source="group_deals", emphasis=True,
        )
        for voucher in services.redeemed_with(db.session, purchase.id)
    ]


# --------------------------------------------------------------------------- pages of others


@hookimpl
def neighbourly_tpl_merchant_page(merchant):
    deals = services.open_deals(db.session, [merchant.id])
    return _html("group_deals/_merchant_page.html", merchant=merchant, deals=deals,
                 progress=services.progress)


@hookimpl
def neighbourly_tpl_directory(network):
    deals = services.directory_deals(db.session, network.id)
    if not deals:
        return None
    return _html("group_deals/_directory.html", deals=deals, progress=services.progress,
                 currency=network.currency)


def _wallet_of(user_id: int) -> dict:
    """Vouchers and open deals for every card of the customer, read once per page (the same
    statements however many cards the wallet shows)."""
    cache = scratch("group_deals").setdefault("wallet", {})  # one read per page, however many cards
    if user_id not in cache:
        cache[user_id] = services.wallet_overview(db.session, user_id)
    return cache[user_id]


@hookimpl
def neighbourly_tpl_wallet_card(merchant, membership):
    overview = _wallet_of(membership.user_id)
    vouchers = overview["vouchers"].get(merchant.id, [])
    deals = overview["deals"].get(merchant.id, [])[:3]
    if not vouchers and not deals:
        return None
    return _html("group_deals/_wallet_card.html", merchant=merchant, vouchers=vouchers, deals=deals,
                 display_code=services.display_code, progress=services.progress)


@hookimpl
def neighbourly_collect_wallet_summary(merchant, membership):
    overview = _wallet_of(membership.user_id)
    vouchers = overview["vouchers"].get(merchant.id, [])
    deals = overview["deals"].get(merchant.id, [])
    card = url_for("wallet.card", membership_id=membership.id)
    lines = []
    if vouchers:
        lines.append(WalletSummaryLine(
            key="group_deal_vouchers", source=services.PLUGIN_NAME, order=45, url=card, tone="notice",
            text=ngettext("%(num)d group-deal voucher to use", "%(num)d group-deal vouchers to use", len(vouchers)),
        ))
    if deals:
        lines.append(WalletSummaryLine(
            key="group_deals", source=services.PLUGIN_NAME, order=55, url=card,
            text=ngettext("%(num)d group deal open", "%(num)d group deals open", len(deals)),
        ))
    return lines or None


@hookimpl
def neighbourly_collect_dashboard_panels(merchant):
    deals = services.open_deals(db.session, [merchant.id], limit=5)
    html = _html("group_deals/_panel.html", merchant=merchant, deals=deals, progress=services.progress)
    return [DashboardPanel(key="group_deals", title=_("Group deals"), order=57, html=html)]


# --------------------------------------------------------------------------- privacy


@hookimpl
def neighbourly_collect_customer_data(user):
    return CustomerDataSection(source="group_deals", data=services.customer_export(db.session, user.id))


@hookimpl
def neighbourly_customer_erased(user, session):
    services.forget_customer(session, user.id)


# --------------------------------------------------------------------------- periodic jobs


@hookimpl
def neighbourly_register_periodic_tasks(huey):
    from huey import crontab

    @huey.periodic_task(crontab(minute="*"), name="group_deals.close_due")
    def close_due() -> None:
        """Every minute: close deals past their deadline (exactly once each, each in a transaction of
        its own, so the deals closed before a failing one stay closed), expire vouchers."""
        for deal_id in job(services.due_deals)():
            job(services.close_deal)(deal_id)
        job(services.expire_vouchers)()


@hookimpl
def neighbourly_demo_content(merchant, neighbours, session):
    from plugins.group_deals.demo import add_demo_deal

    add_demo_deal(session, merchant, neighbours)


@hookimpl
def neighbourly_register_ledger_reasons():
    return list(services.LEDGER_REASONS)
