"""``flask --app webapp demo``: the app factory loads this module by name (``Config.CLI_COMMANDS``)."""

from __future__ import annotations

import click
from flask import Flask


def register(app: Flask) -> None:
    @app.cli.command("demo")
    @click.option("--customers", default=220, show_default=True)
    @click.option("--purchases", default=3200, show_default=True)
    def demo_command(customers: int, purchases: int) -> None:
        """Create the schema if needed and load the demo neighbourhood (idempotent)."""
        import neighbourly_demo

        neighbourly_demo.load(customers=customers, purchases=purchases, echo=click.echo)
