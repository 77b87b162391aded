"""The `aistrata` command: one module per command group."""

from __future__ import annotations

import click

from ... import __version__
from .keys import keys
from .migrate import migrate
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
