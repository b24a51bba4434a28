"""The letters plugin's hook implementations: sending after a purchase, pages, slots, erasure."""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from huey import crontab

from plugins.letters import delivery, services, tasks
from plugins.letters import models as _models  # noqa: F401  (registers the letters_ tables)
from plugins.letters.views import bp
from webapp.plugin_api import (
    MARKETING,
    CustomerDataSection,
    DashboardPanel,
    NavItem,
    db,
    has_consent,
    hookimpl,
    plugin_settings,
    render_fragment,
)

_html = render_fragment


@hookimpl
def neighbourly_register_blueprints(app):
    return [bp]


@hookimpl
def neighbourly_register_periodic_tasks(huey):
    huey.periodic_task(crontab(minute="*/15"), name="letters.sweep")(tasks.sweep)


@hookimpl
def neighbourly_purchase_committed(merchant, purchase):
    delivery.on_purchase_committed(merchant, purchase)


@hookimpl
def neighbourly_collect_nav_items(merchant, user):
    return [
        NavItem(
            _("Letters"), "letters.index", order=65, url_params={"merchant_slug": merchant.slug},
            owner_only=True, icon="mail",
        )
    ]


@hookimpl
def neighbourly_collect_dashboard_panels(merchant):
    # The figures compare customers with and without letters: loaded after the page (STYLE §16).
    return [DashboardPanel(
        key="letters", title=_("Letters"), order=65,
        lazy_url=url_for("letters.panel", merchant_slug=merchant.slug),
    )]


@hookimpl
def neighbourly_tpl_customer_portrait(merchant, membership):
    user = membership.user
    if user.erased_at:
        return None
    return _html(
        "letters/_portrait.html", merchant=merchant, membership=membership,
        letters=services.letters_of(db.session, merchant, membership.id),
        address=services.address_of(db.session, user.id), form=None, errors={},
        consent=has_consent(db.session, user.id, merchant.id, MARKETING),
    )


@hookimpl
def neighbourly_tpl_wallet_card(merchant, membership):
    if not plugin_settings(merchant, "letters")["postal_letters"]:
        return None
    address = services.address_of(db.session, membership.user_id)
    return _html("letters/_wallet_card.html", merchant=merchant, address=address)


@hookimpl
def neighbourly_collect_customer_data(user):
    address = services.address_of(db.session, user.id)
    if address is None:
        return None
    return CustomerDataSection(
        source="letters",
        data={"postal_address": services.address_lines(address)},
    )


@hookimpl
def neighbourly_customer_erased(user, session):
    services.forget_customer(session, user.id)
