"""`aistrata keys rotate-encryption`: re-encrypt stored payloads under the newest key."""

from __future__ import annotations

from pathlib import Path

import click

from ...security.crypto import ENV_VAR, PayloadCipher, rotate_payloads
from ...store.migrations import ensure_schema
from .common import config_options, load, open_database


@click.command("rotate-encryption")
@config_options
def rotate_encryption(config_path: Path | None, data_dir: Path | None) -> None:
    """Re-encrypt every stored prompt and completion with the first key of
    AISTRATA_ENCRYPTION_KEY (plaintext rows get encrypted); then older keys can be dropped."""
    settings, _ = load(config_path, data_dir)
    cipher = PayloadCipher.from_env(settings.env)
    if cipher is None:
        raise click.ClickException(f"{ENV_VAR} is not set: nothing to encrypt with")
    db = open_database(settings)
    ensure_schema(db)
    click.echo(f"re-encrypted {rotate_payloads(db, cipher)} payload row(s) (spans and request log)")
