"""Surveys: reward-backed surveys, a rating after every purchase and a complaint channel."""

from flask_babel import lazy_gettext as _l

from webapp.plugin_api import PluginMeta

PLUGIN = PluginMeta(
    name="surveys",
    title=_l("Surveys and ratings"),
    summary=_l("Ask your customers, pay them points for answering, and hear about bad visits at once."),
    description=_l(
        "Build surveys from templates, invite customers after a purchase, pay a reward exactly once per "
        "person: points, a neighbour's certificate (with Neighbourhood certificates on), or both. "
        "Customers rate every visit; a low rating opens a complaint thread you answer."
    ),
    version="1.0.0",
    category="communication",
    icon="survey",
    adds=(
        _l("A Surveys page with a builder, results and CSV export"),
        _l("\"Rate this visit\" on receipts and customers' cards"),
        _l("Complaint threads with an apology bonus"),
        _l("A Surveys panel on your dashboard with open complaints"),
    ),
)
