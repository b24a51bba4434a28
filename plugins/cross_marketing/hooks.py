"""The cross_marketing plugin's hook implementations: till, receipts, wallet, dashboard, jobs."""

from __future__ import annotations

import logging

from flask import url_for
from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from plugins.cross_marketing import models as _models  # noqa: F401  (registers the tables)
from plugins.cross_marketing import services
from plugins.cross_marketing.guard import failed_lookup_guard
from plugins.cross_marketing.models import Certificate
from plugins.cross_marketing.reminders import send_reminders
from plugins.cross_marketing.views import bp, customer_bp
from webapp.plugin_api import (
    CheckoutLine,
    CustomerDataSection,
    CustomerFact,
    DashboardPanel,
    EventType,
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

log = logging.getLogger(__name__)


_html = render_fragment


@hookimpl
def neighbourly_collect_event_types(merchant):
    return [EventType("certificate.redeemed", _("A partner's certificate is used here"),
                      source="cross_marketing", order=40)]


@hookimpl
def neighbourly_register_blueprints(app):
    return [bp, customer_bp]


@hookimpl
def neighbourly_register_api(app):
    from plugins.cross_marketing.api import api_bp

    return [api_bp]


@hookimpl
def neighbourly_collect_nav_items(merchant, user):
    return [
        NavItem(
            _("Certificates"), "cross_marketing.index", order=55,
            url_params={"merchant_slug": merchant.slug}, owner_only=True, icon="ticket",
        )
    ]


# --------------------------------------------------------------------------- purchase transaction


@hookimpl
def neighbourly_collect_purchase_adjustments(merchant, membership, draft, session):
    certificate = services.find_for_till(
        session, merchant, membership, draft.options, on_failed_lookup=failed_lookup_guard
    )
    if certificate is None:
        return None
    return [
        services.redeem_in_purchase(
            session, merchant, membership, certificate, draft.remaining, draft.amount,
        )
    ]


@hookimpl
def neighbourly_purchase_recorded(merchant, purchase, membership, session, adjustments):
    redeemed: list[dict] = []  # in the sale: a refund reads them back
    services.record_redemption(session, merchant, purchase, adjustments, redeemed)
    services.write_events(session, redeemed)
    issued: list[dict] = []  # history for the economics pages: written after the commit
    services.issue_for_purchase(session, merchant, purchase, membership.user_id, issued)
    services.queue_issued_events(session, merchant.id, issued)
    # The receipt that follows in the same request knows whether there is anything to look up.
    scratch("cross_marketing").setdefault("sale_touched_certificates", {})[purchase.id] = bool(redeemed or issued)


@hookimpl
def neighbourly_purchase_refunded(merchant, purchase, session):
    voided = services.undo_for_refund(session, merchant, purchase)
    for certificate in services.gifts_cancelled(session, purchase, voided):
        _tell_gift_cancelled(certificate)


def _tell_gift_cancelled(certificate) -> None:
    """An e-mail (an outbox row in the refund's transaction) to a friend whose gift was cancelled."""
    from flask import current_app
    from flask_babel import force_locale

    from webapp.plugin_api import send_email

    holder = certificate.holder
    locale = holder.locale if holder.locale in current_app.config["LANGUAGES"] else "en"
    with force_locale(locale):
        subject = _("Your certificate from %(neighbour)s was cancelled", neighbour=certificate.distributor.name)
        text = _(
            "Hello %(name)s,\n\nThe purchase at %(neighbour)s that the certificate you were given came "
            "with was refunded, so the certificate was cancelled. We are sorry.",
            name=holder.name, neighbour=certificate.distributor.name,
        )
    send_email(holder.email, subject, text)


# --------------------------------------------------------------------------- certificates as rewards


@hookimpl
def neighbourly_collect_reward_options(merchant, session):
    return services.reward_options(session, merchant)


@hookimpl
def neighbourly_grant_reward(merchant, user, key, reason, session):
    return services.issue_as_reward(session, merchant, user.id, key, reason)


# --------------------------------------------------------------------------- the till


@hookimpl
def neighbourly_collect_checkout_lines(merchant, membership):
    held = services.certificates_at_till(db.session, merchant, membership.user_id)
    currency = merchant.network.currency
    lines = []
    for certificate in held:
        detail = _(
            "%(value)s from %(neighbour)s, valid until %(date)s",
            value=money(certificate.balance, currency), neighbour=certificate.distributor.name,
            date=format_date(certificate.expires_at),
        )
        if certificate.status == "attached":
            label = _("The customer chose to use a certificate on this purchase")
        else:
            label = _("The customer holds a certificate for you")
        lines.append(CheckoutLine(label, detail, order=40, source="cross_marketing"))
    return lines


@hookimpl
def neighbourly_tpl_checkout(merchant, membership):
    held = services.certificates_at_till(db.session, merchant, membership.user_id)
    return _html(
        "cross_marketing/_checkout.html", merchant=merchant, held=held,
        currency=merchant.network.currency,
    )


@hookimpl
def neighbourly_collect_receipt_lines(merchant, purchase):
    if scratch("cross_marketing").get("sale_touched_certificates", {}).get(purchase.id) is False:
        return []  # recorded in this request, handing out and using no certificate: nothing to read
    currency = merchant.network.currency
    lines = []
    # One statement for the certificates the purchase issued and those it used, with the
    # merchants their lines name (instead of two queries and a load per certificate).
    touched = db.session.scalars(
        select(Certificate)
        .options(joinedload(Certificate.issuer), joinedload(Certificate.distributor))
        .where(or_(Certificate.issued_purchase_id == purchase.id, Certificate.redeemed_purchase_id == purchase.id))
        .order_by(Certificate.id)
    ).all()
    for certificate in touched:
        if certificate.issued_purchase_id != purchase.id:
            continue
        text = _(
            "Certificate %(value)s at %(issuer)s, valid until %(date)s",
            value=money(certificate.face_value, currency), issuer=certificate.issuer.name,
            date=format_date(certificate.expires_at),
        )
        status = _("cancelled") if certificate.status == "voided" else _("in the customer's wallet")
        lines.append(ReceiptLine(text, status, order=60, source="cross_marketing", emphasis=True))
    redeemed = [certificate for certificate in touched if certificate.redeemed_purchase_id == purchase.id]
    for certificate in redeemed:
        lines.append(ReceiptLine(
            _("Certificate from %(neighbour)s", neighbour=certificate.distributor.name),
            _("used, ends in %(last4)s", last4=certificate.code_last4),
            order=16, source="cross_marketing",
        ))
    return lines


# --------------------------------------------------------------------------- wallet and dashboard


@hookimpl
def neighbourly_tpl_wallet_card(merchant, membership):
    certificates = services.certificates_for_card(db.session, membership.user_id, merchant)
    if not certificates:
        return None
    return _html(
        "cross_marketing/_wallet_card.html", merchant=merchant, certificates=certificates,
        display_code=services.display_code,
    )


@hookimpl
def neighbourly_collect_dashboard_panels(merchant):
    figures = services.economics(db.session, merchant, months=6)
    html = _html("cross_marketing/_panel.html", merchant=merchant, figures=figures,
                 currency=merchant.network.currency)
    return [DashboardPanel(key="cross_marketing", title=_("Neighbourhood certificates"), order=55,
                           html=html, wide=True)]


@hookimpl
def neighbourly_collect_customer_facts(merchant, membership, purchase):
    received = services.certificates_received(
        db.session, merchant, membership.user_id, purchase.id if purchase is not None else None
    )
    if not received:
        return None
    # The sentence's own period goes (the facts are joined by "; "), never the one of a date that
    # ends in an abbreviation ("7 дек. 2027 г."): strip it from the pattern, then fill it in.
    clause = _("%(value)s at %(issuer)s, valid until %(date)s.").removesuffix(".")
    value = "; ".join(
        clause % {
            "value": money(certificate.balance, merchant.network.currency), "issuer": certificate.issuer.name,
            "date": format_date(certificate.expires_at),
        }
        for certificate in received
    )
    return [CustomerFact("certificate", value, "cross_marketing", label=_("Certificate"))]


# --------------------------------------------------------------------------- privacy


@hookimpl
def neighbourly_collect_customer_data(user):
    return CustomerDataSection(source="cross_marketing", data=services.customer_export(db.session, user.id))


@hookimpl
def neighbourly_customer_erased(user, session):
    services.forget_holder(session, user.id)


# --------------------------------------------------------------------------- periodic jobs


@hookimpl
def neighbourly_register_periodic_tasks(huey):
    from huey import crontab

    @huey.periodic_task(crontab(minute="7"), name="cross_marketing.expire_and_remind")
    @job
    def expire_and_remind(session) -> None:
        """Hourly: mark expired certificates, then send the due expiry reminders."""
        services.expire_certificates(session)
        send_reminders(session)


@hookimpl
def neighbourly_demo_content(merchant, neighbours, session):
    from plugins.cross_marketing.demo import add_demo_partnership

    add_demo_partnership(session, merchant, neighbours)


@hookimpl
def neighbourly_collect_wallet_summary(merchant, membership):
    certificates = services.certificates_for_card(db.session, membership.user_id, merchant)
    if not certificates:
        return None
    soonest = certificates[0]  # ordered by expiry
    text = ngettext(
        "%(num)d certificate waiting, %(value)s, until %(date)s",
        "%(num)d certificates waiting, %(value)s, the first until %(date)s",
        len(certificates),
        value=money(sum(c.balance for c in certificates), merchant.network.currency),
        date=format_date(soonest.expires_at, "short"),
    )
    return [WalletSummaryLine(key="certificates", text=text, source="cross_marketing", order=40,
                              url=url_for("cross_marketing_wallet.index"), tone="notice")]
