"""E-mail: messages are built as plain data, queued, and delivered by Flask-Mailman in a worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from flask_babel import force_locale
from flask_mailman import EmailMultiAlternatives

from webapp import outbox


def recipient_locale(user=None, network=None) -> str:
    """The language to write to someone in: theirs, else the network's default, else the site's.

    ``user`` is the recipient (or ``None`` when they have no account yet); ``network`` the network
    the message is about. A language the site does not offer is skipped.
    """
    languages = current_app.config["LANGUAGES"]
    for candidate in (getattr(user, "locale", None), getattr(network, "default_locale", None)):
        if candidate in languages:
            return candidate
    return current_app.config["BABEL_DEFAULT_LOCALE"]


@contextmanager
def in_recipient_language(user=None, network=None) -> Iterator[str]:
    """Translate and format what is built inside in the recipient's language (see above).

    E-mails are often composed while someone else is signed in (a cashier's sale, an owner's
    invitation): their words must follow the reader, not the request.
    """
    locale = recipient_locale(user, network)
    with force_locale(locale):
        yield locale


def send_email(
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    sender_name: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Write an e-mail to the outbox in ``db.session``'s transaction; it leaves after the commit.

    The caller commits (a service, or the view right after): an e-mail is sent exactly when the
    change it announces is stored, and survives a queue that is down. Nothing is queued for an
    address in the reserved ``.invalid`` domain (imported people without an e-mail, erased ones).
    """
    from webapp.extensions import db

    if (to or "").lower().endswith(".invalid"):
        return

    outbox.add(
        db.session,
        "email",
        {
            "to": to,
            "subject": subject,
            "text": text,
            "html": html,
            "sender_name": sender_name,
            "headers": headers or {},
        },
    )


@outbox.handler("email", max_attempts=8)
def deliver(message: dict) -> None:
    """Send a queued message now (called in the worker)."""
    default_sender = current_app.config["MAIL_DEFAULT_SENDER"]
    sender = default_sender
    if message.get("sender_name"):
        address = default_sender.split("<")[-1].rstrip(">") if "<" in default_sender else default_sender
        safe_name = message["sender_name"].replace('"', "").replace("\n", " ").replace("\r", " ")
        sender = f'"{safe_name}" <{address}>'
    email = EmailMultiAlternatives(
        subject=message["subject"].replace("\n", " ").replace("\r", " "),
        body=message["text"],
        from_email=sender,
        to=[message["to"]],
        headers=message.get("headers") or {},
    )
    if message.get("html"):
        email.attach_alternative(message["html"], "text/html")
    email.send()
