"""News: merchants post short news and offers to their public page and their customers' cards."""

from flask_babel import lazy_gettext as _l

from webapp.plugin_api import PluginMeta, SettingSpec

PLUGIN = PluginMeta(
    name="news",
    title=_l("News"),
    summary=_l("Tell your customers what is new: offers, new dishes, holiday hours."),
    description=_l(
        "Short posts (up to 1000 characters, with an optional link) shown on your public page "
        "and as a teaser on your customers' loyalty cards."
    ),
    version="1.0.0",
    category="communication",
    icon="newspaper",
    settings=(
        SettingSpec(
            "posts_shown", "int", _l("Posts shown on your public page"), default=3, min=1, max=10,
            help=_l("The newest posts are shown first."),
        ),
        SettingSpec(
            "wallet_teaser", "bool", _l("Show the latest post on customers' cards"), default=True,
        ),
    ),
    adds=(
        _l("A News page where you write and edit posts"),
        _l("The latest posts on your public page"),
        _l("A teaser of the newest post on your customers' cards"),
        _l("A News panel on your dashboard"),
    ),
)
