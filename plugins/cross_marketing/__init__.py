"""Cross-marketing: neighbours hand out each other's certificates, with transparent economics."""

from flask_babel import lazy_gettext as _l

from webapp.plugin_api import PluginMeta

PLUGIN = PluginMeta(
    name="cross_marketing",
    title=_l("Neighbourhood certificates"),
    summary=_l("Your customers receive certificates for the café next door, and the café's for you."),
    description=_l(
        "Create a certificate offer and invite neighbours to hand it out with their purchases. "
        "Certificates land in the customer's wallet, can be gifted to a friend and are redeemed "
        "at your till exactly once. Both sides see what it brought and what it cost, month by "
        "month, with a settlement statement as CSV and PDF."
    ),
    version="1.0.0",
    category="growth",
    icon="ticket",
    adds=(
        _l("A Certificates page for offers, partnerships and monthly economics"),
        _l("Certificates issued automatically at the till when a purchase meets the rule"),
        _l("A certificate field and automatic offers at your till"),
        _l("Certificates with QR codes in customers' wallets, giftable by link"),
        _l("A certificates panel on your dashboard"),
    ),
)
