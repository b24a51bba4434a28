"""The concierge plugin's hook implementations: pages, the e-card and wallet ask box, the wallet
summary line, the dashboard panel, the webhook event, privacy and demo content."""

from __future__ import annotations

from flask import has_request_context, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from plugins.concierge import models as _models  # noqa: F401  (registers the tables)
from plugins.concierge import services
from plugins.concierge.views import bp
from webapp.plugin_api import (
    CustomerDataSection,
    DashboardPanel,
    EventType,
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
            _("Questions"),
            "concierge.index",
            order=58,
            url_params={"merchant_slug": merchant.slug},
            icon="question",
        )
    ]


@hookimpl
def neighbourly_collect_event_types(merchant):
    return [
        EventType(
            services.EVENT_ASKED,
            _("A customer asks a question"),
            source=services.PLUGIN_NAME,
            order=60,
        )
    ]


def _box(merchant, place: str):
    return render_fragment(
        "concierge/_ask_box.html",
        merchant=merchant,
        place=place,
        token=services.new_token(),
        topics=services.topics(db.session, merchant.id),
    )


@hookimpl
def neighbourly_tpl_merchant_page(merchant):
    mine = []
    if has_request_context() and current_user.is_authenticated:
        mine = services.customer_questions(db.session, current_user.id, merchant.id, limit=3)
    return render_fragment(
        "concierge/_merchant_page.html",
        merchant=merchant,
        box=_box(merchant, "page"),
        mine=mine,
    )


@hookimpl
def neighbourly_tpl_wallet_card(merchant, membership):
    mine = services.customer_questions(db.session, membership.user_id, merchant.id, limit=3)
    return render_fragment(
        "concierge/_wallet_card.html", merchant=merchant, box=_box(merchant, "wallet"), mine=mine
    )


def _unread_of(user_id: int) -> dict[int, int]:
    """Unseen answers for every card of the wallet, read once per page."""
    cache = scratch("concierge").setdefault("wallet", {})  # one read per page, however many cards
    if user_id not in cache:
        cache[user_id] = services.unread_by_merchant(db.session, user_id)
    return cache[user_id]


@hookimpl
def neighbourly_collect_wallet_summary(merchant, membership):
    unread = _unread_of(membership.user_id).get(merchant.id, 0)
    if not unread:
        return None
    return [
        WalletSummaryLine(
            key="concierge_answers",
            source=services.PLUGIN_NAME,
            order=40,
            tone="notice",
            url=url_for("wallet.card", membership_id=membership.id),
            text=ngettext(
                "%(num)d new answer to your question",
                "%(num)d new answers to your questions",
                unread,
            ),
        )
    ]


@hookimpl
def neighbourly_collect_dashboard_panels(merchant):
    figures = services.figures(db.session, merchant)
    html = render_fragment("concierge/_panel.html", merchant=merchant, figures=figures)
    return [DashboardPanel(key="concierge", title=_("Questions"), order=58, html=html)]


@hookimpl
def neighbourly_collect_customer_data(user):
    return CustomerDataSection(
        source="concierge", data=services.customer_export(db.session, user.id)
    )


@hookimpl
def neighbourly_customer_erased(user, session):
    services.forget_customer(session, user.id)


@hookimpl
def neighbourly_demo_content(merchant, neighbours, session):
    from plugins.concierge.demo import add_demo_content

    add_demo_content(session, merchant)
