"""Virtual API keys: `sk-ast-<43 url-safe chars>` (256 random bits).

Only the SHA-256 of a key is stored; the raw key is shown once, at creation. A fast hash is
the right one here: the input is a uniformly random 256-bit secret, so there is nothing for
a slow password hash to protect, and the gateway hashes on every request. `key_prefix`
keeps the start of the key ("sk-ast-" plus 8 characters) so people can tell keys apart.
`role` is one of admin, team_admin, member (the default) and viewer (see `gateway.roles`).
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from aistrata.core import new_id, now_ms

from .db import Database, from_json, to_json

KEY_PREFIX = "sk-ast-"
DISPLAY_CHARS = 8
_COLUMNS = (
    "id, key_hash, key_prefix, alias, user_id, team_id, models, metadata, created_at, "
    "expires_at, revoked_at, last_used_at, role"
)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(slots=True)
class KeyRecord:
    id: str
    key_hash: str
    key_prefix: str
    alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    models: list[str] = field(default_factory=list)  # empty: every model
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0  # epoch ms, as are the other timestamps
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None
    role: str = "member"

    def is_active(self, now: int | None = None) -> bool:
        now = now_ms() if now is None else now
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at

    def allows(self, model: str) -> bool:
        """Whether this key may call `model`; an entry ending in `*` matches a prefix."""
        if not self.models:
            return True
        for entry in self.models:
            if entry.endswith("*"):
                if model.startswith(entry[:-1]):
                    return True
            elif entry == model:
                return True
        return False


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        alias: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        models: builtins.list[str] | None = None,
        expires_at: int | None = None,
        metadata: dict[str, Any] | None = None,
        role: str = "member",
    ) -> tuple[str, KeyRecord]:
        """A new key: (the raw key, to show once, and its stored record)."""
        raw = generate_key()
        rec = KeyRecord(
            id=new_id("key_"), key_hash=hash_key(raw),
            key_prefix=raw[: len(KEY_PREFIX) + DISPLAY_CHARS], alias=alias, user_id=user_id,
            team_id=team_id, models=list(models or []), metadata=dict(metadata or {}),
            created_at=now_ms(), expires_at=expires_at, role=role,
        )
        self.db.execute(
            f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.id, rec.key_hash, rec.key_prefix, rec.alias, rec.user_id, rec.team_id,
                to_json(rec.models), to_json(rec.metadata), rec.created_at, rec.expires_at,
                None, None, rec.role,
            ),
        )
        return raw, rec

    def get(self, id: str) -> KeyRecord | None:
        return self._one("id = ?", id)

    def get_by_hash(self, key_hash: str) -> KeyRecord | None:
        return self._one("key_hash = ?", key_hash)

    def list(self, user_id: str | None = None, team_id: str | None = None) -> builtins.list[KeyRecord]:
        """Keys, oldest first, revoked ones included (they show in the audit view)."""
        where, params = [], []
        for column, value in (("user_id", user_id), ("team_id", team_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.fetchall(
            f"SELECT {_COLUMNS} FROM api_keys{clause} ORDER BY created_at, id", params
        )
        return [_record(r) for r in rows]

    def revoke(self, id: str, now: int | None = None) -> bool:
        """Revoke a key; False when there is no such key or it was revoked already."""
        changed = self.db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (now_ms() if now is None else now, id),
        )
        return changed > 0

    def touch(self, id: str, now: int | None = None) -> None:
        self.db.execute(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now_ms() if now is None else now, id)
        )

    def _one(self, condition: str, value: str) -> KeyRecord | None:
        row = self.db.fetchone(f"SELECT {_COLUMNS} FROM api_keys WHERE {condition}", (value,))
        return None if row is None else _record(row)


def _record(row: dict[str, Any]) -> KeyRecord:
    row["models"] = from_json(row["models"])
    row["metadata"] = from_json(row["metadata"])
    return KeyRecord(**row)
