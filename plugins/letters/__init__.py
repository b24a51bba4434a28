"""Letters: thank-you, reassurance and "we miss you" letters by e-mail and as printable PDFs."""

from flask_babel import lazy_gettext as _l

from webapp.plugin_api import PluginMeta, SettingSpec

PLUGIN = PluginMeta(
    name="letters",
    title=_l("Letters"),
    summary=_l("Thank customers after a purchase, reassure them the next day, and win them back."),
    description=_l(
        "A personal thank-you e-mail after each purchase, a reassurance message with care tips "
        "the next day, a \"we miss you\" letter after a long break, and printed letters with your "
        "logo for the post. Only customers who agreed to messages receive them."
    ),
    version="1.0.0",
    category="communication",
    icon="mail",
    settings=(
        SettingSpec("thanks_email", "bool", _l("Send a thank-you e-mail after each purchase"), default=True),
        SettingSpec("reassurance_email", "bool", _l("Send a reassurance e-mail after the purchase"), default=True),
        SettingSpec(
            "reassurance_hours", "int", _l("Hours after the purchase for the reassurance"), default=20,
            min=1, max=72, help=_l("Doubts are strongest in the first 24 hours."),
        ),
        SettingSpec(
            "winback_days", "int", _l("Days without a visit before \"we miss you\""), default=60,
            min=0, max=365, help=_l("0 switches the letter off."),
        ),
        SettingSpec(
            "postal_letters", "bool", _l("Prepare printed thank-you letters for customers with a postal address"),
            default=False,
        ),
        SettingSpec(
            "open_pixel", "bool", _l("Count opened e-mails with a tracking pixel"), default=False,
            help=_l("Off by default: it tells you who read your letter, which some customers find intrusive."),
        ),
    ),
    adds=(
        _l("Letter templates with a live preview"),
        _l("Automatic thank-you and reassurance e-mails"),
        _l("A \"Letters to print\" page with one PDF for the post"),
        _l("Partner codes enclosed in letters"),
        _l("A Letters panel on your dashboard and in customer portraits"),
    ),
)
