"""Who is calling: the master key, a virtual key, or (only when no master key is set and the
gateway listens on loopback) an anonymous local user.

Virtual keys are looked up by hash; answers are cached for a second so the hot path does
not wait on the database, and a revocation on this node drops the cache entry at once. A key
whose metadata lists `allowed_ips` (CIDRs) is refused from any other address. JWT bearer
tokens are checked by a `TokenVerifier` (see `aistrata.security.jwt`) when one is configured.

Every principal has a role (see `aistrata.gateway.roles`): the master key and the anonymous
loopback caller are admins, a key's role is in its record, a JWT's in a claim.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Protocol

from ..core import ErrorKind, GatewayError
from ..providers.base import Secret
from .roles import Reach, Role, reach_of
from ..store.keys import KeyRecord, KeyStore, hash_key

KEY_PREFIX = "sk-ast-"


@dataclass(slots=True, frozen=True)
class Claims:
    """What a verified bearer token says about its holder."""

    user: str
    team: str | None
    role: Role


class TokenVerifier(Protocol):
    def accepts(self, token: str) -> bool: ...

    async def verify(self, token: str) -> Claims: ...


@dataclass(slots=True, frozen=True)
class Principal:
    kind: Literal["master", "key", "jwt", "anonymous"]
    key: KeyRecord | None = None
    role: Role = "admin"
    claims: Claims | None = None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    @property
    def key_alias(self) -> str | None:
        return self.key.alias if self.key else None

    @property
    def user_id(self) -> str | None:
        if self.key is not None:
            return self.key.user_id
        return self.claims.user if self.claims else None

    @property
    def team_id(self) -> str | None:
        if self.key is not None:
            return self.key.team_id
        return self.claims.team if self.claims else None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def reach(self) -> Reach:
        """The rows this caller may read (see `gateway.roles`)."""
        return reach_of(self.role, self.key_id, self.user_id, self.team_id)

    @property
    def actor(self) -> str:
        """Who this is, for the audit and access logs (never a secret)."""
        if self.key is not None:
            return self.key.id
        return f"jwt:{self.claims.user}" if self.claims else self.kind

    def check_model(self, model: str) -> None:
        if self.role == "viewer":
            raise GatewayError(ErrorKind.permission, "the viewer role cannot call models")
        if self.key is not None and not self.key.allows(model):
            raise GatewayError(ErrorKind.permission, f"this key is not allowed to use model '{model}'", param="model")


MASTER = Principal("master")
ANONYMOUS = Principal("anonymous")


class Authenticator:
    def __init__(
        self, master_key: Secret | None, keys: KeyStore, cache_ttl: float = 1.0, jwt: TokenVerifier | None = None,
    ) -> None:
        self.master_key = master_key
        self.keys = keys
        self.cache_ttl = cache_ttl
        self.jwt = jwt
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}

    @property
    def open_mode(self) -> bool:
        """No master key: loopback-only, anonymous callers allowed."""
        return not self.master_key

    async def authenticate(self, token: str | None, client_ip: str | None = None) -> Principal:
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
            allowed = record.metadata.get("allowed_ips")
            if allowed and not ip_allowed(client_ip, tuple(allowed)):
                raise GatewayError(ErrorKind.permission, "this API key may not be used from this address")
            return Principal("key", record, record.role)  # type: ignore[arg-type]
        if token and self.jwt is not None and self.jwt.accepts(token):
            claims = await self.jwt.verify(token)
            return Principal("jwt", role=claims.role, claims=claims)
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


@lru_cache(maxsize=4096)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def ip_allowed(client_ip: str | None, cidrs: tuple[str, ...]) -> bool:
    """Whether `client_ip` lies in one of `cidrs` (validated when the key was made); an
    unknown address is refused."""
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
        return any(address in net for net in _networks(cidrs))
    except ValueError:
        return False
