"""Gamification: status levels with their own cashback rate, and badges."""

from flask_babel import lazy_gettext as _l

from webapp.plugin_api import PluginMeta, SettingSpec

PLUGIN = PluginMeta(
    name="gamification",
    title=_l("Status levels and badges"),
    summary=_l("Five status levels with higher cashback, and badges customers collect."),
    description=_l(
        "Customers climb levels (New, Regular, Silver, Gold, VIP by default) by spending, visiting "
        "or bringing friends; each level has its own cashback rate. Badges reward the first "
        "purchase, the tenth visit, monthly streaks and shopping at several businesses of the network."
    ),
    version="1.0.0",
    category="engagement",
    icon="star",
    settings=(
        SettingSpec("basis", "choice", _l("What earns a level"), default="spend",
                    choices=(("spend", _l("Total spent")), ("visits", _l("Number of visits")),
                             ("referrals", _l("Friends who made a purchase"))),
                    requires=(("referrals", "referrals"),)),
        SettingSpec("window", "choice", _l("Counted over"), default="lifetime",
                    choices=(("lifetime", _l("All time")), ("rolling", _l("The last 12 months")),
                             ("calendar", _l("The calendar year")))),
        SettingSpec("downgrades", "bool", _l("Levels can drop (at most once a period, announced 30 days ahead)"),
                    default=False),
        SettingSpec("neighbour_merchants", "int", _l("Businesses of the network for the good neighbour badge"),
                    default=3, min=2, max=50),
        SettingSpec("streak_months", "int", _l("Months in a row for the streak badge"), default=3, min=2, max=24),
    ),
    adds=(
        _l("Status levels with their own cashback rate"),
        _l("Level, progress and badges on customers' cards"),
        _l("A Levels page: distribution, customers close to the next level, cost"),
    ),
)
