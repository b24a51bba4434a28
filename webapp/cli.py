"""Command-line entry points: ``flask --app webapp network-create`` and friends (``demo`` comes from
``neighbourly_demo``, listed in ``CLI_COMMANDS``)."""

from __future__ import annotations

import importlib

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

    _register_import(app)
    _register_configured(app)

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

        from webapp.errors import NeighbourlyError
        from webapp.extensions import db
        from webapp.models import User
        from webapp.schema import ensure_schema
        from webapp.services import accounts, merchants
        from webapp.unit_of_work import unit_of_work

        db.session.commit()  # an open transaction would block the schema check's own connection
        ensure_schema()
        try:
            name, slug, code, value = merchants.clean_network(db.session, name, currency, locale, point_value)
            zone = merchants.clean_network_timezone(timezone_name)
            email = accounts.normalize_email(operator_email)
            operator = db.session.scalar(select(User).where(User.email == email))
            with unit_of_work(db.session):  # the operator and the network, or neither
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
            raise click.ClickException(error.message) from error
        click.echo(
            f"Network \"{network.name}\" created (1 point = {value} minor units of {code}, "
            f"time zone {network.timezone}). Business "
            f"owners sign up and apply at /business/; {operator.email} approves them at "
            f"/operator/{network.slug}/; customers find the street at /n/{network.slug}/."
        )


def _register_configured(app: Flask) -> None:
    """Commands of packages outside the core (``CLI_COMMANDS``, e.g. the demo street's
    ``neighbourly_demo.cli``), imported by name so the core never imports them; a package that
    is not installed is skipped, like a configured plugin that is not present."""
    for module_name in app.config.get("CLI_COMMANDS", []):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
                continue
            raise
        module.register(app)


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

    @app.cli.command("customer-totals")
    @click.option("--merchant", "merchant_slug", default=None, help="Only this business (its slug).")
    def customer_totals(merchant_slug: str | None) -> None:
        """Rebuild the per-card monthly totals behind lifetime value and cohorts from the purchases."""
        from sqlalchemy import select

        from webapp.extensions import db
        from webapp.models import Merchant
        from webapp.services.ledger import rebuild_customer_months

        merchant_id = None
        if merchant_slug:
            merchant_id = db.session.scalar(select(Merchant.id).where(Merchant.slug == merchant_slug))
            if merchant_id is None:
                raise click.ClickException(f"No business with the slug {merchant_slug!r}.")
        click.echo(f"{rebuild_customer_months(db.session, merchant_id)} card-month rows written")
def _register_import(app: Flask) -> None:
    @app.cli.command("import-customers")
    @click.argument("merchant_slug")
    @click.argument("csv_file", required=False, type=click.Path(exists=True, dir_okay=False))
    @click.option("--map", "mapping", multiple=True, metavar="COLUMN=FIELD",
                  help="Match a header to a field (name, phone, email, card_code, balance, birthday, "
                       "total_spent, consent_date); unmatched columns are guessed from their header.")
    @click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
    @click.option("--resume", "resume_id", type=int, default=None,
                  help="Carry on with an interrupted import of this number instead of a new file.")
    @click.option("--batch-size", default=2000, show_default=True, help="Rows per committed batch.")
    def import_customers(merchant_slug: str, csv_file: str | None, mapping: tuple[str, ...],
                         dry_run: bool, resume_id: int | None, batch_size: int) -> None:
        """Import a merchant's customers from a CSV file, as the "Import customers" page does."""
        from sqlalchemy import select

        from webapp.errors import NeighbourlyError
        from webapp.extensions import db
        from webapp.models import Merchant
        from webapp.services import imports
        from webapp.timezones import use_network_zone

        merchant = db.session.scalar(select(Merchant).where(Merchant.slug == merchant_slug))
        if merchant is None:
            raise click.ClickException(f"No business with the address {merchant_slug}.")
        use_network_zone(merchant.network)
        try:
            if resume_id is not None:
                job = imports.get(db.session, merchant, resume_id)
                if job is None:
                    raise click.ClickException(f"{merchant_slug} has no import number {resume_id}.")
            else:
                if not csv_file:
                    raise click.ClickException("Give the CSV file (or --resume NUMBER).")
                with open(csv_file, "rb") as handle:
                    data = handle.read()
                job = imports.create_upload(db.session, merchant, None, csv_file.rsplit("/", 1)[-1], data)
                chosen = list(job.mapping)
                for pair in mapping:
                    column, _, field = pair.partition("=")
                    if column.strip() not in job.header:
                        raise click.ClickException(f"The file has no column {column.strip()!r}.")
                    for index in range(len(chosen)):
                        if chosen[index] == field.strip():
                            chosen[index] = ""
                    chosen[job.header.index(column.strip())] = field.strip()
                imports.set_mapping(db.session, job, chosen)
                click.echo("Columns: " + ", ".join(
                    f"{title} -> {field or '-'}" for title, field in zip(job.header, job.mapping, strict=True)))
                check = imports.check(db.session, job.id)
                click.echo(f"{check.total} rows: {check.create} new, {check.link} existing accounts, "
                           f"{check.skip} imported before, {check.failed} with problems; "
                           f"{check.points} points.")
                for row in check.problems[:50]:
                    click.echo(f"  line {row.line}: {'; '.join(row.problems)}")
                if check.failed > 50:
                    click.echo(f"  ... and {check.failed - 50} more")
                if dry_run:
                    click.echo(f"Nothing written (dry run); import number {job.id} is kept for later.")
                    return
            job = imports.run(
                db.session, job.id, batch_size=batch_size,
                on_progress=lambda progress: click.echo(f"  {progress.done}/{progress.total} rows"),
            )
        except NeighbourlyError as error:
            raise click.ClickException(error.message) from error
        click.echo(f"Import {job.id} {job.status}: {job.created_count} new customers, "
                   f"{job.linked_count} existing accounts, {job.skipped_count} imported before, "
                   f"{job.failed_count} rows not imported, {job.points_imported} points.")
