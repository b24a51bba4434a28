"""The news plugin's hook implementations: its pages, nav link, e-card section, card teaser, panel."""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _

from plugins.news import models as _models  # noqa: F401  (registers the news_posts table)
from plugins.news import services
from plugins.news.views import bp
from webapp.plugin_api import (
    DashboardPanel,
    NavItem,
    WalletSummaryLine,
    db,
    hookimpl,
    plugin_settings,
    render_fragment,
)

_html = render_fragment


@hookimpl
def neighbourly_register_blueprints(app):
    return [bp]


@hookimpl
def neighbourly_collect_nav_items(merchant, user):
    return [
        NavItem(
            _("News"), "news.index", order=60, url_params={"merchant_slug": merchant.slug},
            owner_only=True, icon="newspaper",
        )
    ]


@hookimpl
def neighbourly_tpl_merchant_page(merchant):
    limit = plugin_settings(merchant, "news")["posts_shown"]
    posts = services.latest_posts(db.session, merchant.id, limit)
    if not posts:
        return None
    return _html("news/_merchant_page.html", merchant=merchant, posts=posts)


@hookimpl
def neighbourly_tpl_wallet_card(merchant, membership):
    if not plugin_settings(merchant, "news")["wallet_teaser"]:
        return None
    posts = services.latest_posts(db.session, merchant.id, 1)
    if not posts:
        return None
    return _html("news/_wallet_teaser.html", merchant=merchant, post=posts[0])


@hookimpl
def neighbourly_collect_dashboard_panels(merchant):
    latest, count = services.latest_post_and_count(db.session, merchant.id)
    html = _html("news/_panel.html", merchant=merchant, count=count, latest=latest)
    return [DashboardPanel(key="news", title=_("News"), order=60, html=html)]


@hookimpl
def neighbourly_collect_customer_data(user):
    # Posts belong to merchants and say nothing about the customers who read them.
    return None


@hookimpl
def neighbourly_customer_erased(user, session):
    services.forget_author(session, user.id)


@hookimpl
def neighbourly_demo_content(merchant, neighbours, session):
    from plugins.news.demo import add_demo_posts

    add_demo_posts(session, merchant, neighbours)


@hookimpl
def neighbourly_collect_wallet_summary(merchant, membership):
    if not plugin_settings(merchant, "news")["wallet_teaser"]:
        return None
    posts = services.latest_posts(db.session, merchant.id, 1)
    if not posts:
        return None
    title = posts[0].title
    if len(title) > 60:
        title = title[:59].rstrip() + "…"
    return [WalletSummaryLine(key="news", text=_("News: %(title)s", title=title), source="news", order=60,
                              url=url_for("public.merchant", slug=merchant.slug))]
