"""The core's own navigation, dashboard panels and receipt lines, written as hook implementations."""

from __future__ import annotations

import logging

from flask import render_template
from flask_babel import ngettext
from markupsafe import Markup

from webapp.contracts import DashboardPanel, EventType, NavItem, ReceiptLine
from webapp.formatting import money, points
from webapp.plugins import hookimpl
from webapp.services import webhooks  # registers the webhook outbox handler in every process
from webapp.tasks import job
from webapp.templating import gettext as _  # the catalogue looked up once a request

log = logging.getLogger(__name__)


@hookimpl
def neighbourly_collect_nav_items(merchant, user):
    return [
        NavItem(_("Dashboard"), "business.dashboard", order=10, url_params={"merchant_slug": merchant.slug}, owner_only=True),
        NavItem(_("Till"), "cashier.till", order=20, url_params={"merchant_slug": merchant.slug}),
        NavItem(_("Customers"), "business.customers", order=30, url_params={"merchant_slug": merchant.slug}, owner_only=True),
        NavItem(_("Marketplace"), "marketplace.index", order=80, url_params={"merchant_slug": merchant.slug}, owner_only=True),
        NavItem(_("Settings"), "business.settings", order=90, url_params={"merchant_slug": merchant.slug}, owner_only=True),
        NavItem(_("Staff"), "business.staff", order=95, url_params={"merchant_slug": merchant.slug}, owner_only=True),
        NavItem(_("Integrations"), "integrations.index", order=97, url_params={"merchant_slug": merchant.slug}, owner_only=True),
    ]


@hookimpl
def neighbourly_collect_dashboard_panels(merchant):
    from webapp.services import analytics

    figures = analytics.dashboard_figures(merchant)
    # Rendered from an autoescaped .html template, so it is markup already.
    html = Markup(render_template("business/_core_figures.html", merchant=merchant, figures=figures))  # noqa: S704
    panels = [DashboardPanel(key="core", title=_("Key figures"), order=0, html=html, wide=True)]
    value = analytics.customer_value(merchant)
    html = Markup(render_template("business/_customer_value.html", merchant=merchant, value=value))  # noqa: S704
    panels.append(DashboardPanel(key="core-customer-value", title=_("Customer value and retention"), order=3,
                                 html=html, wide=True))
    panels.append(_expiry_panel(merchant))
    return panels


def _expiry_panel(merchant) -> DashboardPanel:
    """Points due to expire month by month over the next year, loaded after the dashboard page
    (it reads the credits still holding points, which grow with the merchant)."""
    from flask import url_for

    return DashboardPanel(
        key="core-expiry", title=_("Points expiring"), order=5,
        lazy_url=url_for("business.expiry_panel", merchant_slug=merchant.slug),
    )


@hookimpl
def neighbourly_collect_receipt_lines(merchant, purchase):
    currency = merchant.network.currency
    lines = [ReceiptLine(_("Bill"), money(purchase.amount, currency), order=0)]
    if purchase.points_used:
        lines.append(
            ReceiptLine(
                _("Paid with points"),
                ngettext("%(points)s point (%(value)s)", "%(points)s points (%(value)s)",
                         purchase.points_used, points=points(purchase.points_used),
                         value=money(purchase.points_value, currency)),
                order=10,
            )
        )
    if purchase.certificate_value_used:
        lines.append(ReceiptLine(_("Paid with certificate"), money(purchase.certificate_value_used, currency), order=15))
    if purchase.discount:
        lines.append(ReceiptLine(_("Discount"), money(purchase.discount, currency), order=16))
    lines.append(ReceiptLine(_("To pay"), money(purchase.amount_paid, currency), order=20, emphasis=True))
    lines.append(
        ReceiptLine(_("Points earned"), "+" + points(purchase.points_earned), order=30, emphasis=True)
    )
    lines.append(ReceiptLine(_("Card balance"), points(purchase.membership.balance), order=40))
    if purchase.refunded_at:
        lines.append(ReceiptLine(_("Refunded"), _("yes"), order=50, emphasis=True))
    return lines


@hookimpl
def neighbourly_register_periodic_tasks(huey):
    from huey import crontab

    from webapp.tasks import relay_outbox

    # Every minute: outbox messages that no request could hand over (queue down, process killed).
    huey.periodic_task(crontab(minute="*"), name="core.relay_outbox")(relay_outbox)

    # Nightly: deliveries settled more than 30 days ago leave the endpoints' logs.
    huey.periodic_task(crontab(hour="3", minute="47"), name="core.purge_webhook_log")(_purge_webhook_log)

    # The points lifecycle. Birthdays hourly: "today" is each network's own, and a card gets one
    # bonus a year whatever the number of runs. Expiry and its reminders once a night.
    huey.periodic_task(crontab(minute="5"), name="core.birthday_bonuses")(_birthday_bonuses)
    huey.periodic_task(crontab(hour="2", minute="40"), name="core.expire_points")(_expire_points)

    @huey.periodic_task(crontab(hour="3", minute="17"), name="core.verify_ledger")
    def verify_ledger() -> None:
        """Nightly: every cached balance must equal its ledger sum; mismatches are logged loudly."""
        from webapp.extensions import db
        from webapp.services.ledger import find_balance_mismatches

        for membership_id, balance, ledger_total in find_balance_mismatches(db.session):
            log.error("membership %s: balance %s but ledger sums to %s", membership_id, balance, ledger_total)


@hookimpl
def neighbourly_register_ledger_reasons():
    from webapp.ledger_reasons import CORE_KINDS

    return list(CORE_KINDS)


@hookimpl
def neighbourly_collect_event_types(merchant):
    return [
        EventType("purchase.recorded", _("A sale is recorded"), order=10),
        EventType("purchase.refunded", _("A sale is refunded"), order=20),
        EventType("membership.created", _("A customer joins"), order=30),
    ]


@hookimpl
def neighbourly_event_recorded(merchant, event, data, session):
    webhooks.on_event(session, merchant, event, data)
@job
def _purge_webhook_log(session) -> int:
    return webhooks.purge_old(session)


@job
def _birthday_bonuses(session) -> int:
    """Hourly: credit today's birthday bonuses and queue the greetings."""
    from webapp.services import points

    return points.run_birthday_bonuses(session)


@job
def _expire_points(session) -> int:
    """Nightly: expire due points, then remind customers 30 and 7 days before their next expiry."""
    from webapp.services import points

    expired = points.run_expiry(session)
    points.send_reminders(session)
    return expired
