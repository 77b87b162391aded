"""Who is calling: the master key, a virtual key, or (only when no master key is set and the
gateway listens on loopback) an anonymous local user.

Virtual keys are looked up by hash; answers are cached for a second so the hot path does
not wait on the database, and a revocation on this node drops the cache entry at once.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from typing import Literal

from ..core import ErrorKind, GatewayError
from ..providers.base import Secret
from ..store.keys import KeyRecord, KeyStore, hash_key

KEY_PREFIX = "sk-ast-"


@dataclass(slots=True, frozen=True)
class Principal:
    kind: Literal["master", "key", "anonymous"]
    key: KeyRecord | None = None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    @property
    def key_alias(self) -> str | None:
        return self.key.alias if self.key else None

    @property
    def user_id(self) -> str | None:
        return self.key.user_id if self.key else None

    @property
    def team_id(self) -> str | None:
        return self.key.team_id if self.key else None

    @property
    def is_admin(self) -> bool:
        return self.kind in ("master", "anonymous")

    def check_model(self, model: str) -> None:
        if self.key is not None and not self.key.allows(model):
            raise GatewayError(ErrorKind.permission, f"this key is not allowed to use model '{model}'", param="model")


MASTER = Principal("master")
ANONYMOUS = Principal("anonymous")


class Authenticator:
    def __init__(self, master_key: Secret | None, keys: KeyStore, cache_ttl: float = 1.0) -> None:
        self.master_key = master_key
        self.keys = keys
        self.cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}

    @property
    def open_mode(self) -> bool:
        """No master key: loopback-only, anonymous callers allowed."""
        return not self.master_key

    async def authenticate(self, token: str | None) -> Principal:
        if token and self.master_key and hmac.compare_digest(token, self.master_key.reveal()):
            return MASTER
        if token and token.startswith(KEY_PREFIX):
            record = await self._lookup(token)
            if record is None:
                raise GatewayError(ErrorKind.authentication, "invalid API key")
            if record.revoked_at is not None:
                raise GatewayError(ErrorKind.authentication, "this API key has been revoked")
            if not record.is_active(time.time() * 1000):
                raise GatewayError(ErrorKind.authentication, "this API key has expired")
            return Principal("key", record)
        if self.open_mode:
            return ANONYMOUS  # any other token (SDKs insist on one) is ignored on loopback
        if not token:
            raise GatewayError(ErrorKind.authentication, "missing API key: send 'Authorization: Bearer <key>'")
        raise GatewayError(ErrorKind.authentication, "invalid API key")

    async def _lookup(self, token: str) -> KeyRecord | None:
        digest = hash_key(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = await asyncio.to_thread(self.keys.get_by_hash, digest)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[digest] = (now + self.cache_ttl, record)
        return record

    def forget(self, key_hash: str | None = None) -> None:
        """Drop cached answers (one key's, or all) after a change on this node."""
        if key_hash is None:
            self._cache.clear()
        else:
            self._cache.pop(key_hash, None)


def token_from_headers(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else auth.strip()
    return headers.get("x-api-key") or headers.get("api-key") or headers.get("x-goog-api-key")
