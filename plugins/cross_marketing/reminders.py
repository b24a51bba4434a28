"""Expiry reminders: e-mails 7 days and 1 day before a certificate expires, via the task queue."""

from __future__ import annotations

from flask_babel import force_locale, format_date
from flask_babel import gettext as _

from plugins.cross_marketing import services


def send_reminders(session) -> int:
    """E-mail holders 7 days and 1 day before expiry, through the task queue."""
    from flask import current_app

    from webapp.plugin_api import public_url, send_email, unit_of_work

    reminders = services.due_reminders(session)
    link = public_url("cross_marketing_wallet.index")  # the same for every holder
    with unit_of_work(session):  # the e-mails are outbox rows: they leave once committed
        for reminder in reminders:
            locale = reminder.locale if reminder.locale in current_app.config["LANGUAGES"] else "en"
            with current_app.test_request_context(), force_locale(locale):
                date = format_date(reminder.expires_at)
                subject = _(
                    "Your certificate at %(issuer)s expires on %(date)s",
                    issuer=reminder.issuer_name, date=date,
                )
                if reminder.days == 1:
                    intro = _("Your certificate expires tomorrow.")
                else:
                    intro = _("Your certificate expires in a week.")
                text = _(
                    "Hello %(name)s,\n\n%(intro)s It is worth %(value)s at %(issuer)s and is valid "
                    "until %(date)s.\n\nOpen your certificates:\n%(link)s",
                    name=reminder.name, intro=intro, value=reminder.value, issuer=reminder.issuer_name,
                    date=date, link=link,
                )
            send_email(reminder.email, subject, text)
    return len(reminders)
