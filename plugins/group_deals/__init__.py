"""Group deals: the more neighbours join before the deadline, the lower the price for all of them."""

from flask_babel import lazy_gettext as _l

from webapp.plugin_api import PluginMeta

PLUGIN = PluginMeta(
    name="group_deals",
    title=_l("Group deals"),
    summary=_l("Collective buying: the price drops as more customers join before the deadline."),
    description=_l(
        "Offer a product or service with two to five price tiers. Customers join at the current "
        "price or for the best price only, watch the price fall as friends join, and receive a "
        "voucher for the final price when the deadline passes. Customers also propose what you "
        "should sell next and vote for each other's ideas."
    ),
    version="1.0.0",
    category="growth",
    icon="users",
    adds=(
        _l("A Group deals page to create deals with price tiers and see their figures"),
        _l("Deal pages with a live progress chart, on your public page and in customers' wallets"),
        _l("Vouchers with QR codes, redeemed at your till at the deal price"),
        _l("An ideas board where customers propose and vote"),
    ),
)
