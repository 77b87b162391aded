"""The `aistrata` command: one module per command group."""

from __future__ import annotations

import click

from ... import __version__
from .audit import audit
from .compliance import compliance
from .encryption import rotate_encryption
from .export import export
from .keys import keys
from .kill import kill
from .limits import budgets, limits
from .migrate import migrate
from .retention import retention
from .routing import routing
from .serve import serve


@click.group()
def main() -> None:
    """AI Strata: one gateway for every model call."""


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(f"aistrata {__version__}")


main.add_command(serve)
main.add_command(keys)
main.add_command(migrate)
main.add_command(budgets)
main.add_command(limits)
main.add_command(export)
main.add_command(retention)
main.add_command(routing)
main.add_command(audit)
main.add_command(kill)
main.add_command(compliance)
keys.add_command(rotate_encryption)
