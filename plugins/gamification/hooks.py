"""The gamification plugin's hooks: the level's rate in the sale, level-ups after it, card and pages."""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import select

from plugins.gamification import models as _models  # noqa: F401  (registers the gamification tables)
from plugins.gamification import services, tasks
from plugins.gamification.models import Level, Status
from plugins.gamification.views import bp
from webapp.plugin_api import (
    CheckoutLine,
    CustomerDataSection,
    CustomerFact,
    DashboardPanel,
    EarnRate,
    EventType,
    Membership,
    NavItem,
    ReceiptLine,
    SegmentCondition,
    WalletSummaryLine,
    db,
    hookimpl,
    plugin_settings,
    rate_number,
    render_fragment,
    setting_usable,
)

_html = render_fragment


@hookimpl
def neighbourly_register_blueprints(app):
    return [bp]


@hookimpl
def neighbourly_register_periodic_tasks(huey):
    from huey import crontab

    huey.periodic_task(crontab(hour="3", minute="20"), name="gamification.check")(tasks.check_all)


@hookimpl
def neighbourly_collect_event_types(merchant):
    return [EventType("level.changed", _("A customer's level changes"), source="gamification", order=50)]


@hookimpl
def neighbourly_plugin_enabled(merchant, plugin_name, session):
    settings = plugin_settings(merchant, "gamification")
    services.create_default_levels(session, merchant, settings["basis"])
    # Customers start at the level their history gives, not at the bottom.
    return services.backfill_in_words(services.backfill(session, merchant, settings))


@hookimpl
def neighbourly_collect_earn_rates(merchant, membership):
    found = services.level_rate(db.session, merchant.id, membership.id)
    if found is None:
        return None
    rate, name = found
    return EarnRate(basis_points=rate, source="gamification", label=_("%(level)s level", level=name))


@hookimpl
def neighbourly_purchase_refunded(merchant, purchase, session):
    services.on_refund(session, merchant, purchase, plugin_settings(merchant, "gamification"))


@hookimpl
def neighbourly_purchase_committed(merchant, purchase):
    # Levels and badges follow the sale through the outbox (eventually consistent, once): two
    # statements fewer inside every sale. The earn rate stays in the sale (``collect_earn_rates``).
    services.on_purchase(db.session, merchant, purchase, plugin_settings(merchant, "gamification"))
    tasks.announce_level_up(merchant, purchase)


@hookimpl
def neighbourly_collect_receipt_lines(merchant, purchase):
    if purchase.refunded_at is not None:
        return None  # the refund took back whatever level the purchase gave
    row = db.session.execute(
        select(Level.name).join(Status, Status.merchant_id == Level.merchant_id)
        .where(Status.level_up_purchase_id == purchase.id, Status.membership_id == purchase.membership_id,
               Level.merchant_id == merchant.id, Level.position == Status.position, Status.position > 0)
    ).first()
    if row is None:
        return None
    return [ReceiptLine(_("New level"), _("Reached %(level)s!", level=row[0]), order=40,
                        source="gamification", emphasis=True)]


@hookimpl
def neighbourly_collect_checkout_lines(merchant, membership):
    found = services.level_rate(db.session, merchant.id, membership.id)
    if found is None:
        return None
    rate, name = found
    return [CheckoutLine(_("Level: %(level)s", level=name), _("%(rate)s%% cashback", rate=rate_number(rate)),
                         order=30, source="gamification")]


@hookimpl
def neighbourly_collect_segment_conditions(merchant, session):
    levels = session.execute(
        select(Level.position, Level.name).where(Level.merchant_id == merchant.id).order_by(Level.position)
    ).all()
    if not levels:
        return None
    return [SegmentCondition(key="gamification:level", label=_("Status level"), source="gamification",
                             choices=tuple((str(position), name) for position, name in levels), order=20)]


@hookimpl
def neighbourly_collect_segment_members(merchant, key, value):
    if key != "gamification:level":
        return None
    return services.members_at_level(merchant.id, value)


@hookimpl
def neighbourly_collect_customer_facts(merchant, membership, purchase):
    found = services.level_rate(db.session, merchant.id, membership.id)
    if found is None:
        return None
    return [CustomerFact(key="status", value=found[1], source="gamification", label=_("Status level"))]


def _card_context(merchant, membership) -> dict | None:
    """The card's context (the levels, the member's status and badges: two statements), or None
    when the merchant has no levels."""
    settings = plugin_settings(merchant, "gamification")
    view = services.card(db.session, merchant.id, membership.id)
    if view.progress is None:
        return None
    return dict(
        merchant=merchant, membership=membership, status=view.status, progress=view.progress,
        settings=settings, level_rows=view.level_rows, currency=merchant.network.currency,
        badges=view.badges, badge_names=services.BADGE_NAMES, referrals_on=settings["basis"] == "referrals" and setting_usable(merchant, "gamification", "basis"),
    )


@hookimpl
def neighbourly_tpl_wallet_card(merchant, membership):
    context = _card_context(merchant, membership)
    if context is None:
        return None
    html = _html("gamification/_wallet_card.html", **context)
    status = context["status"]
    if status is not None and not status.level_up_seen:
        services.mark_seen(db.session, status.id)  # shown once, like a flash message
    return html


@hookimpl
def neighbourly_tpl_customer_portrait(merchant, membership):
    context = _card_context(merchant, membership)
    if context is None:
        return None
    return _html("gamification/_portrait.html", **context)


@hookimpl
def neighbourly_collect_dashboard_panels(merchant):
    # The overview aggregates the merchant's purchases: it loads after the page (STYLE §16), so
    # the dashboard itself costs the same at any size.
    return [DashboardPanel(
        key="gamification", title=_("Status levels"), order=70,
        lazy_url=url_for("gamification.panel", merchant_slug=merchant.slug),
    )]


@hookimpl
def neighbourly_collect_nav_items(merchant, user):
    return [NavItem(_("Levels"), "gamification.index", order=70,
                    url_params={"merchant_slug": merchant.slug}, owner_only=True, icon="star")]


@hookimpl
def neighbourly_collect_customer_data(user):
    rows = db.session.execute(
        select(Membership.merchant_id, Status.position, Status.held_position, Status.metric)
        .join(Status, Status.membership_id == Membership.id).where(Membership.user_id == user.id)
    ).all()
    badges = db.session.execute(
        select(Membership.merchant_id, _models.Badge.badge, _models.Badge.earned_at)
        .join(_models.Badge, _models.Badge.membership_id == Membership.id).where(Membership.user_id == user.id)
    ).all()
    return CustomerDataSection(source="gamification", data={
        "levels": [{"merchant_id": m, "level": max(p, h), "counted": v} for m, p, h, v in rows],
        "badges": [{"merchant_id": m, "badge": b, "earned_at": e.isoformat()} for m, b, e in badges],
    })


@hookimpl
def neighbourly_customer_erased(user, session):
    # Levels and badges are derived from purchases, which stay under the pseudonymous id.
    return None


@hookimpl
def neighbourly_collect_wallet_summary(merchant, membership):
    found = services.level_rate(db.session, merchant.id, membership.id)
    if found is None:
        return None
    rate, name = found
    return [WalletSummaryLine(
        key="level", source="gamification", order=20,
        text=_("Level %(level)s · %(rate)s%% cashback", level=name, rate=rate_number(rate)),
    )]
