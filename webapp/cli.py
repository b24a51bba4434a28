"""Command-line entry points: ``flask --app webapp demo`` and friends."""

from __future__ import annotations

import click
from flask import Flask


def register(app: Flask) -> None:
    _register_outbox(app)

    @app.cli.command("hooks-reference")
    def hooks_reference_command() -> None:
        """Rewrite docs/hooks.md from the hook specifications."""
        from webapp import hookref

        click.echo(f"wrote {hookref.write_reference()}")

    _register_points(app)

    @app.cli.command("demo")
    @click.option("--customers", default=220, show_default=True)
    @click.option("--purchases", default=3200, show_default=True)
    def demo_command(customers: int, purchases: int) -> None:
        """Create the schema if needed and load the demo neighbourhood (idempotent)."""
        from webapp import demo

        demo.load(customers=customers, purchases=purchases, echo=click.echo)

    @app.cli.command("network-create")
    @click.argument("name")
    @click.option("--currency", required=True, help="ISO 4217 code, e.g. KZT, EUR, BGN.")
    @click.option("--locale", default="en", show_default=True, help="Default language, one of LANGUAGES: en, ru, kk, bg.")
    @click.option("--point-value", default=None,
                  help="What one point is worth in the currency, e.g. 1 or 0.50 [default: 1].")
    @click.option("--timezone", "timezone_name", default="UTC", show_default=True,
                  help="IANA time zone of the street, e.g. Asia/Almaty: local days, weeks and times.")
    @click.option("--operator-email", required=True, help="The operator's sign-in e-mail.")
    @click.option("--operator-name", default="", help="The operator's name (for a new account).")
    @click.password_option("--operator-password", envvar="NEIGHBOURLY_OPERATOR_PASSWORD",
                           help="For a new account; asked for when not given.")
    def network_create(name: str, currency: str, locale: str, point_value: str | None,
                       timezone_name: str, operator_email: str, operator_name: str, operator_password: str) -> None:
        """Create the street's network and its operator account (an existing account is reused)."""
        from sqlalchemy import select

        from webapp.demo import ensure_schema
        from webapp.errors import NeighbourlyError
        from webapp.extensions import db
        from webapp.models import User
        from webapp.services import accounts, merchants

        db.session.commit()  # an open transaction would block the schema check's own connection
        ensure_schema()
        try:
            name, slug, code, value = merchants.clean_network(db.session, name, currency, locale, point_value)
            zone = merchants.clean_network_timezone(timezone_name)
            email = accounts.normalize_email(operator_email)
            operator = db.session.scalar(select(User).where(User.email == email))
            if operator is None:
                operator = accounts.register_user(
                    db.session, email=email, password=operator_password,
                    name=operator_name or email.split("@")[0], locale=locale,
                )
            network = merchants.create_network(
                db.session, name, code, operator, default_locale=locale, slug=slug, point_value_minor=value,
                timezone=zone,
            )
        except NeighbourlyError as error:
            db.session.rollback()
            raise click.ClickException(error.message) from error
        click.echo(
            f"Network \"{network.name}\" created (1 point = {value} minor units of {code}, "
            f"time zone {network.timezone}). Business "
            f"owners sign up and apply at /business/; {operator.email} approves them at "
            f"/operator/{network.slug}/; customers find the street at /n/{network.slug}/."
        )


def _register_outbox(app: Flask) -> None:
    outbox_group = click.Group("outbox", help="Follow-up work waiting in the transactional outbox.")
    app.cli.add_command(outbox_group)

    @outbox_group.command("status")
    def outbox_status() -> None:
        """How many messages wait, and how many failed after every attempt."""
        from webapp import outbox
        from webapp.extensions import db

        backlog = outbox.backlog(db.session)
        oldest = backlog.oldest.isoformat() if backlog.oldest else "-"
        click.echo(f"waiting: {backlog.waiting} (oldest {oldest}); failed: {backlog.failed}")

    @outbox_group.command("run")
    def outbox_run() -> None:
        """Run every due message in this process (without the queue), e.g. while Redis is down."""
        from webapp import outbox
        from webapp.extensions import db

        total = 0
        while done := outbox.relay_due(db.session, run_here=True):
            total += done
        click.echo(f"{total} messages done")

    @outbox_group.command("retry")
    def outbox_retry() -> None:
        """Give failed messages a fresh set of attempts (once their cause is fixed)."""
        from webapp import outbox
        from webapp.extensions import db

        click.echo(f"{outbox.retry_failed(db.session)} failed messages will be tried again")


def _register_points(app: Flask) -> None:
    points_group = click.Group("points", help="The points lifecycle: expiry, reminders, birthday bonuses.")
    app.cli.add_command(points_group)

    @points_group.command("expire")
    def points_expire() -> None:
        """Expire due points now and send the reminders (what the worker does every night)."""
        from webapp.extensions import db
        from webapp.services import points

        expired = points.run_expiry(db.session)
        reminded = points.send_reminders(db.session)
        click.echo(f"{expired} points expired; {reminded} reminders queued")

    @points_group.command("birthdays")
    def points_birthdays() -> None:
        """Credit today's birthday bonuses now (the worker does it every hour; never twice)."""
        from webapp.extensions import db
        from webapp.services import points

        click.echo(f"{points.run_birthday_bonuses(db.session)} birthday bonuses credited")
