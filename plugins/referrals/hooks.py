"""The referrals plugin's hooks: linking at joining, rewards in the purchase, card and pages."""

from __future__ import annotations

from flask import has_request_context, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from plugins.referrals import models as _models  # noqa: F401  (registers the referrals tables)
from plugins.referrals import services
from plugins.referrals.views import bp, public_bp
from webapp.plugin_api import (
    CustomerDataSection,
    DashboardPanel,
    NavItem,
    WalletSummaryLine,
    db,
    hookimpl,
    plugin_settings,
    rate_number,
    render_fragment,
    unit_of_work,
)
from webapp.plugin_api import (
    points as format_points,
)

_html = render_fragment


def share_url(merchant, code: str) -> str:
    from flask import current_app

    base = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    path = url_for("referrals_public.open_link", code=code)
    return f"{base}{path}" if base else url_for("referrals_public.open_link", code=code, _external=True)


@hookimpl
def neighbourly_register_blueprints(app):
    return [bp, public_bp]


@hookimpl
def neighbourly_plugin_enabled(merchant, plugin_name, session):
    # Members who joined before the switch get their codes lazily, on their card.
    return None


@hookimpl
def neighbourly_membership_recorded(merchant, membership, session, referral_code, rejoined):
    if rejoined:
        return  # linked once, at the first joining
    ip = request.remote_addr if has_request_context() and referral_code else None
    services.link_at_joining(
        session, merchant, membership, referral_code, ip, plugin_settings(merchant, "referrals")
    )


@hookimpl
def neighbourly_purchase_recorded(merchant, purchase, membership, session):
    if membership.referrer_id is None:  # the card the core loaded: nobody to pay, no chain query
        return
    services.pay_rewards(session, merchant, purchase, plugin_settings(merchant, "referrals"))


@hookimpl
def neighbourly_purchase_refunded(merchant, purchase, session):
    services.undo_for_refund(session, merchant, purchase)


@hookimpl
def neighbourly_collect_nav_items(merchant, user):
    return [NavItem(_("Referrals"), "referrals.index", order=72,
                    url_params={"merchant_slug": merchant.slug}, owner_only=True, icon="users")]


@hookimpl
def neighbourly_tpl_wallet_card(merchant, membership):
    member = services.member_referrals(db.session, membership.id)
    code = member.code
    if code is None:
        with unit_of_work(db.session):  # a trivial, idempotent write: the card's own code
            code = services.ensure_code(db.session, membership)
    settings = plugin_settings(merchant, "referrals")
    return _html(
        "referrals/_wallet_card.html", merchant=merchant, membership=membership,
        link=share_url(merchant, code), settings=settings,
        friends=member.friends, earned=member.earned, rules=rules_in_words(merchant, settings),
    )


@hookimpl
def neighbourly_collect_share_params(merchant, membership):
    """A deal or page this member shares counts as their referral when a friend joins through it."""
    code = services.member_referrals(db.session, membership.id).code
    if code is None:
        with unit_of_work(db.session):  # a trivial, idempotent write: the card's own code
            code = services.ensure_code(db.session, membership)
    return {"ref": code}


_RULE_SETTINGS = ("level1_bp", "level1_fixed", "level2_bp", "level2_fixed", "level3_bp", "level3_fixed",
                  "signup_bonus", "monthly_cap")
_rules_text: dict[tuple, tuple[str, ...]] = {}


def rules_in_words(merchant, settings: dict) -> list[str]:
    """The programme in plain words, for customers: depth, rates, bonus, cap.

    The same few settings come back on every wallet card: the words are kept per locale and
    settings (Python-side translations are the slow path).
    """
    key = (str(get_locale()), tuple(settings[name] for name in _RULE_SETTINGS))
    words = _rules_text.get(key)
    if words is None:
        if len(_rules_text) >= 512:
            _rules_text.clear()
        words = _rules_text[key] = tuple(_rules(settings))
    return list(words)


def _rules(settings: dict) -> list[str]:
    words = []
    names = {1: _("a friend you brought"), 2: _("a friend of your friend"), 3: _("one more step away")}
    for depth in (1, 2, 3):
        bp_value, fixed = settings[f"level{depth}_bp"], settings[f"level{depth}_fixed"]
        if not bp_value and not fixed:
            continue
        parts = []
        if bp_value:
            parts.append(_("%(rate)s%% of what they pay", rate=rate_number(bp_value)))
        if fixed:
            parts.append(_("%(points)s points", points=format_points(fixed)))
        words.append(_("When %(who)s buys here, you get %(what)s.", who=names[depth], what=" + ".join(parts)))
    words.append(_("Rewards stop after three steps: there is no deeper chain."))
    if settings["signup_bonus"]:
        words.append(_("Your friend gets %(points)s bonus points on their first purchase.",
                       points=format_points(settings["signup_bonus"])))
    words.append(_("You can earn at most %(points)s points a month from referrals.",
                   points=format_points(settings["monthly_cap"])))
    words.append(_("If a purchase is refunded, its rewards are taken back."))
    return words


@hookimpl
def neighbourly_collect_dashboard_panels(merchant):
    figures, paid = services.panel_figures(db.session, merchant.id)
    html = _html("referrals/_panel.html", merchant=merchant, funnel=figures, cost=paid)
    return [DashboardPanel(key="referrals", title=_("Referrals"), order=72, html=html)]


@hookimpl
def neighbourly_tpl_customer_portrait(merchant, membership):
    member = services.member_referrals(db.session, membership.id)
    return _html("referrals/_portrait.html", friends=member.friends, referrer=member.referred,
                 earned=member.earned)


@hookimpl
def neighbourly_collect_customer_data(user):
    return CustomerDataSection(source="referrals", data=services.customer_data(db.session, user.id))


@hookimpl
def neighbourly_customer_erased(user, session):
    services.forget_addresses(session, user.id)


@hookimpl
def neighbourly_collect_wallet_summary(merchant, membership):
    return [WalletSummaryLine(
        key="referrals", text=_("Bring a friend"), source="referrals", order=70,
        url=url_for("wallet.card", membership_id=membership.id) + "#referrals",
    )]


@hookimpl
def neighbourly_register_ledger_reasons():
    return list(services.LEDGER_REASONS)
