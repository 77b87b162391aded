"""`aistrata migrate`: apply pending schema migrations."""

from __future__ import annotations

from pathlib import Path

import click

from ...store.migrations import migrate as apply_migrations
from ...store.migrations import pending
from .common import config_options, load, open_database


@click.command()
@config_options
@click.option("--check", is_flag=True, help="Only list pending migrations; exit 1 if any.")
def migrate(config_path: Path | None, data_dir: Path | None, check: bool) -> None:
    """Apply the database's pending migrations, in order."""
    settings, _ = load(config_path, data_dir)
    db = open_database(settings)
    try:
        todo = pending(db)
        if check:
            for name in todo:
                click.echo(name)
            raise SystemExit(1 if todo else 0)
        for name in apply_migrations(db):
            click.echo(f"applied {name}")
        if not todo:
            click.echo("schema is up to date")
    finally:
        db.close()
