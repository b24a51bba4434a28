"""Ask the merchant: customers ask questions, the FAQ answers at once, staff answer the rest by topic."""

from flask_babel import lazy_gettext as _l

from webapp.plugin_api import PluginMeta

PLUGIN = PluginMeta(
    name="concierge",
    title=_l("Ask the merchant"),
    summary=_l(
        "Customers ask questions; your FAQ answers at once and staff answer the rest by topic."
    ),
    description=_l(
        "Customers ask on your public page and on their card in the wallet. While they type, matching "
        "answers from your FAQ appear. A question that is sent goes to the staff member you assigned to "
        "its topic, who is e-mailed and answers it on a staff page; the customer is notified. You see "
        "open questions and the time to a first answer, and turn good answers into FAQ entries."
    ),
    version="1.0.0",
    category="communication",
    icon="question",
    adds=(
        _l("A Questions page for staff, with threads, topics and your FAQ"),
        _l("An ask box with instant FAQ answers on your public page and customers' cards"),
        _l("E-mails to the staff member of a topic and to the customer who asked"),
    ),
)
