"""`aistrata retention run`: delete what the `observe` retention settings say is too old."""

from __future__ import annotations

from pathlib import Path

import click

from ...observe.traces import TraceSettings, run_retention
from .common import config_options, load, open_database


@click.group()
def retention() -> None:
    """Retention of recorded data (config: observe.retention_days, observe.retention)."""


@retention.command("run")
@config_options
def run(config_path: Path | None, data_dir: Path | None) -> None:
    """Delete requests and spans older than their configured age, now."""
    settings, _ = load(config_path, data_dir)
    policy = TraceSettings.from_config(settings.raw).retention
    if not policy.active:
        raise click.ClickException("no retention configured: set observe.retention_days in the config")
    db = open_database(settings)
    try:
        for data_class, count in run_retention(db, policy).items():
            click.echo(f"{data_class}: deleted {count}")
    finally:
        db.close()
