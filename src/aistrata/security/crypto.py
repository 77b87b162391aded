"""Payloads at rest: prompts and completions are masked (when configured) and encrypted before
they reach the `spans` table, and decrypted when read back.

    AISTRATA_ENCRYPTION_KEY=<newest Fernet key>,<older key>,...    # rotation: newest first
    security: {mask_payloads: true}

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) behind a MultiFernet: new values use
the first key, any listed key decrypts. Stored values carry the `enc1:` prefix, so rows written
before encryption was turned on still read back as they are. `aistrata keys
rotate-encryption` re-encrypts every stored payload under the newest key (and encrypts the
plaintext ones); after that the old keys can be dropped from the variable.

Provider credentials are not persisted anywhere today (they come from the config file and
the environment), so there is nothing of theirs to encrypt at rest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..gateway.config import ConfigError
from ..store.db import Database

log = logging.getLogger("aistrata.security")

ENV_VAR = "AISTRATA_ENCRYPTION_KEY"
PREFIX = "enc1:"
# Fallback masking without the guard extra: the formats most often pasted.
_PATTERNS = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[EMAIL]"),
    (re.compile(r"\b(?:\d[ -]?){13,19}\b"), "[NUMBER]"),
    (re.compile(r"\b(?:sk|pk|rk|ghp|gho|xox[abp])[-_][A-Za-z0-9_-]{16,}\b"), "[SECRET]"),
    (re.compile(r"\+?\d{1,3}[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}\b"), "[PHONE]"),
)


def regex_mask(text: str) -> str:
    for pattern, label in _PATTERNS:
        text = pattern.sub(label, text)
    return text


def masker() -> Callable[[str], str]:
    """The guard package's detectors when the `guard` extra is installed, else `regex_mask`."""
    try:
        from ..guard.masking import mask_text
    except ImportError:
        log.warning("the guard extra is not installed: stored payloads are masked by simple patterns only")
        return regex_mask
    return mask_text


class PayloadCipher:
    def __init__(self, keys: list[str]) -> None:
        try:
            self.fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except ValueError as exc:
            raise ConfigError(f"{ENV_VAR} must be comma-separated Fernet keys (Fernet.generate_key())") from exc

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PayloadCipher | None:
        raw = env.get(ENV_VAR, "")
        keys = [k for k in raw.split(",") if k.strip()]
        return cls(keys) if keys else None

    def encrypt(self, text: str) -> str:
        return PREFIX + self.fernet.encrypt(text.encode()).decode()

    def decrypt(self, text: str) -> str:
        if not text.startswith(PREFIX):
            return text  # written before encryption was on
        try:
            return self.fernet.decrypt(text[len(PREFIX):].encode()).decode()
        except InvalidToken:
            log.warning("a stored payload cannot be decrypted with the configured keys")
            return "[encrypted with a key that is no longer configured]"

    def rotate(self, text: str) -> str:
        if not text.startswith(PREFIX):
            return self.encrypt(text)
        return PREFIX + self.fernet.rotate(text[len(PREFIX):].encode()).decode()


class PayloadProtection:
    """The spans table's `PayloadCodec`: mask (optional) then encrypt (optional) on the way in,
    decrypt on the way out."""

    def __init__(self, cipher: PayloadCipher | None, mask: Callable[[str], str] | None) -> None:
        self.cipher = cipher
        self._mask = mask

    @classmethod
    def from_settings(cls, raw: Mapping[str, object], env: Mapping[str, str]) -> PayloadProtection | None:
        section = raw.get("security") or {}
        mask = masker() if isinstance(section, dict) and section.get("mask_payloads") else None
        cipher = PayloadCipher.from_env(env)
        return cls(cipher, mask) if cipher or mask else None

    def mask(self, text: str) -> str:
        return self._mask(text) if self._mask else text

    def seal(self, text: str) -> str:
        return self.cipher.encrypt(text) if self.cipher else text

    def open(self, text: str) -> str:
        return self.cipher.decrypt(text) if self.cipher else text


# Where payloads are stored: applications' spans, and gateway spans on their request rows.
PAYLOAD_TABLES = (("spans", ("trace_id", "span_id")), ("requests", ("id",)))


def rotate_payloads(db: Database, cipher: PayloadCipher, page: int = 500) -> int:
    """Re-encrypt every stored payload under the newest key; returns rows rewritten."""
    return sum(_rotate(db, cipher, table, key, page) for table, key in PAYLOAD_TABLES)


def _rotate(db: Database, cipher: PayloadCipher, table: str, key: tuple[str, ...], page: int) -> int:
    """Pages by primary key so a large table is never held in memory at once."""
    columns, marks = ", ".join(key), ", ".join("?" * len(key))
    match = " AND ".join(f"{c} = ?" for c in key)
    done, after = 0, ("",) * len(key)
    while True:
        rows = db.fetchall(
            f"SELECT {columns}, input, output FROM {table} WHERE ({columns}) > ({marks}) "
            f"AND (input IS NOT NULL OR output IS NOT NULL) ORDER BY {columns} LIMIT ?", (*after, page))
        with db.transaction():
            for r in rows:
                db.execute(f"UPDATE {table} SET input = ?, output = ? WHERE {match}",
                           (_maybe(cipher.rotate, r["input"]), _maybe(cipher.rotate, r["output"]),
                            *(r[c] for c in key)))
        done += len(rows)
        if len(rows) < page:
            return done
        after = tuple(rows[-1][c] for c in key)


def _maybe(fn: Callable[[str], str], value: str | None) -> str | None:
    return None if value is None else fn(value)
