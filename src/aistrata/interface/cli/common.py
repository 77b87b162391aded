"""Options and loading shared by the commands."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import click

from ...gateway.config import ConfigError, Settings, load_settings
from ...providers.registry import Registry, load_registry
from ...store.db import Database


def config_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  envvar="AISTRATA_CONFIG", help="YAML config (a LiteLLM config.yaml works too).")
    @click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), envvar="AISTRATA_DATA_DIR",
                  help="Where the SQLite database and spool files live (default ~/.aistrata).")
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def load(config_path: Path | None, data_dir: Path | None) -> tuple[Settings, Registry]:
    registry = load_registry()
    try:
        return load_settings(registry, config_path, data_dir), registry
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def open_database(settings: Settings) -> Database:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return Database.from_settings(settings.data_dir, settings.database_url)
