"""E-mail: messages are built as plain data, queued, and delivered by Flask-Mailman in a worker."""

from __future__ import annotations

from flask import current_app
from flask_mailman import EmailMultiAlternatives


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
    from webapp import outbox
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
