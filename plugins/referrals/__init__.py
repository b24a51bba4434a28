"""Referrals: personal links, rewards on friends' purchases up to three levels deep, anti-fraud."""

from flask_babel import lazy_gettext as _l

from webapp.plugin_api import PluginMeta, SettingSpec

MAX_DEPTH = 3

PLUGIN = PluginMeta(
    name="referrals",
    title=_l("Referrals"),
    summary=_l("Customers bring friends with a personal link and earn points on their purchases."),
    description=_l(
        "Every customer gets a personal link and QR code. Friends who join through it are linked "
        "once; the customer earns points on their purchases, up to three levels deep, within a "
        "monthly cap. Rules are shown to customers in plain words."
    ),
    version="1.0.0",
    category="engagement",
    icon="users",
    settings=(
        SettingSpec("level1_bp", "basis_points", _l("Friend's purchases: reward as a percentage of what they pay"),
                    default=300, min=0, max=5000),
        SettingSpec("level1_fixed", "int", _l("Friend's purchases: fixed points per purchase"),
                    default=0, min=0, max=100000),
        SettingSpec("level2_bp", "basis_points", _l("Friend of a friend: reward as a percentage of what they pay"),
                    default=100, min=0, max=5000),
        SettingSpec("level2_fixed", "int", _l("Friend of a friend: fixed points per purchase"),
                    default=0, min=0, max=100000),
        SettingSpec("level3_bp", "basis_points", _l("Third level: reward as a percentage of what they pay"),
                    default=50, min=0, max=5000),
        SettingSpec("level3_fixed", "int", _l("Third level: fixed points per purchase"),
                    default=0, min=0, max=100000),
        # A friend who joins through a link is welcomed with something by default (a zero bonus
        # read as broken): 3,000 points, a typical first visit's cashback at the street's rates.
        SettingSpec("signup_bonus", "int", _l("Bonus points for the friend on their first purchase"),
                    default=3000, min=0, max=100000),
        SettingSpec("monthly_cap", "int", _l("Most points one customer can earn from referrals a month"),
                    default=5000, min=0, max=10**9),
        SettingSpec("ip_weekly_limit", "int",
                    _l("Referrals a week from one internet address before they are held for review"),
                    default=10, min=1, max=1000),
    ),
    adds=(
        _l("A personal referral link and QR code on every customer's card"),
        _l("Referral rewards paid as points, reversed when a purchase is refunded"),
        _l("A Referrals page: funnel, top referrers, cost, held referrals to review"),
    ),
)
