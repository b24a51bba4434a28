"""Offers for you: segments of a merchant's members built in a form, and offers sent to them."""

from flask_babel import lazy_gettext as _l

from webapp.plugin_api import PluginMeta

PLUGIN = PluginMeta(
    name="offers",
    title=_l("Offers for you"),
    summary=_l("Pick customers by their visits and spend and send them points or a message."),
    description=_l(
        "Build a segment of your customers in a form (no visit for N days, visits or spend in a "
        "period, birthday month) and watch its size as you go. Send it bonus points, a "
        "neighbour's certificate or a message: it appears under “For you” in each customer's "
        "wallet and, with their consent, by e-mail. A held-out control group gets nothing, so you "
        "see what the offer really brought in."
    ),
    version="1.0.0",
    category="growth",
    icon="gift",
    adds=(
        _l("An Offers page with a segment builder that shows the segment's size live"),
        _l("Offers under “For you” in customers' wallets, points paid once when claimed"),
        _l("A report per offer: sent, opened, used, and revenue against a control group"),
    ),
)
