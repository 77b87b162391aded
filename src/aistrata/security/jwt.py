"""JWT bearer tokens: verified against a shared secret (HS256) or a JWKS (a URL fetched and
cached, or keys inline), with issuer, audience, expiry and not-before checked.

    auth:
      jwt:
        jwks_url: https://idp.example/.well-known/jwks.json   # or `jwks: {keys: [...]}`, or
        secret: os.environ/AISTRATA_JWT_SECRET                # HS256
        issuer: https://idp.example/
        audience: aistrata
        user_claim: sub          # required in every token
        team_claim: team
        role_claim: role         # admin | team_admin | member | viewer; default_role when absent
        default_role: member
        leeway_s: 30
        jwks_cache_s: 300

The JWKS is fetched at the first token and kept for `jwks_cache_s`; a token signed by a key
id the cache lacks triggers one refetch (at most once a second), which is how an identity
provider's key rotation is picked up. Only the algorithm of the matching key is accepted, so
a token cannot pick a weaker one ("none", or HS256 with a public key as the secret).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

import jwt
from jwt import PyJWK, PyJWKSet

from ..core import ErrorKind, GatewayError
from ..gateway.auth import Claims
from ..gateway.config import ConfigError, resolve_secret
from ..gateway.roles import DEFAULT_ROLE, ROLES, Role

HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"]
REFETCH_MIN_S = 1.0


def _denied(message: str) -> GatewayError:
    return GatewayError(ErrorKind.authentication, message)


@dataclass(slots=True)
class JwtSettings:
    issuer: str | None = None
    audience: str | None = None
    secret: str | None = None
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    user_claim: str = "sub"
    team_claim: str = "team"
    role_claim: str = "role"
    default_role: Role = DEFAULT_ROLE
    leeway_s: float = 30.0
    jwks_cache_s: float = 300.0

    @classmethod
    def from_config(cls, section: Mapping[str, Any], env: Mapping[str, str]) -> JwtSettings:
        secret = resolve_secret(section.get("secret"), env, "auth.jwt.secret")
        settings = cls(
            issuer=section.get("issuer"), audience=section.get("audience"),
            secret=secret.reveal() if secret else None, jwks_url=section.get("jwks_url"), jwks=section.get("jwks"),
            user_claim=str(section.get("user_claim", "sub")), team_claim=str(section.get("team_claim", "team")),
            role_claim=str(section.get("role_claim", "role")),
            default_role=section.get("default_role", DEFAULT_ROLE),
            leeway_s=float(section.get("leeway_s", 30)), jwks_cache_s=float(section.get("jwks_cache_s", 300)),
        )
        if sum(x is not None for x in (settings.secret, settings.jwks_url, settings.jwks)) != 1:
            raise ConfigError("auth.jwt needs exactly one of secret, jwks_url and jwks")
        if settings.default_role not in ROLES:
            raise ConfigError(f"auth.jwt.default_role must be one of {', '.join(ROLES)}")
        return settings


class JwtVerifier:
    """The `TokenVerifier` for JWTs (see `gateway.auth`)."""

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        if settings.jwks is not None:
            self._keys = _key_map(settings.jwks)
            self._fetched_at = float("inf")  # inline keys never expire

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], env: Mapping[str, str]) -> JwtVerifier | None:
        section = (raw.get("auth") or {}).get("jwt")
        return cls(JwtSettings.from_config(section, env)) if section else None

    def accepts(self, token: str) -> bool:
        return token.count(".") == 2

    async def verify(self, token: str) -> Claims:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _denied("invalid bearer token: not a JWT") from exc
        if s.secret is not None:
            key: Any = s.secret
            algorithms = HMAC_ALGORITHMS
        else:
            jwk = await self._key(header.get("kid"))
            key, algorithms = jwk, [jwk.algorithm_name]
        try:
            claims = jwt.decode(
                token, key=key, algorithms=algorithms, audience=s.audience, issuer=s.issuer, leeway=s.leeway_s,
                options={"require": ["exp"], "verify_aud": s.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _denied("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise _denied("the token is not valid yet") from exc
        except jwt.InvalidIssuerError as exc:
            raise _denied("the token's issuer is not accepted") from exc
        except jwt.InvalidAudienceError as exc:
            raise _denied("the token's audience is not accepted") from exc
        except jwt.InvalidSignatureError as exc:
            raise _denied("the token's signature is invalid") from exc
        except jwt.PyJWTError as exc:
            raise _denied(f"invalid token: {exc}") from exc
        return self._claims(claims)

    def _claims(self, claims: Mapping[str, Any]) -> Claims:
        s = self.settings
        user = claims.get(s.user_claim)
        if not isinstance(user, str) or not user:
            raise _denied(f"the token lacks the '{s.user_claim}' claim")
        team = claims.get(s.team_claim)
        role = claims.get(s.role_claim, s.default_role)
        if role not in ROLES:
            raise _denied(f"the token's role '{role}' is not one of {', '.join(ROLES)}")
        return Claims(user=user, team=str(team) if team is not None else None, role=role)

    async def _key(self, kid: str | None) -> PyJWK:
        found = self._pick(kid)
        if (found is None or self._age() >= self.settings.jwks_cache_s) and self.settings.jwks_url:
            async with self._lock:  # one fetch at a time; the waiters use its result
                if self._age() >= REFETCH_MIN_S:
                    await self._refresh(keep_old=found is not None)
            found = self._pick(kid)
        if found is None:
            raise _denied("the token's signing key is unknown")
        return found

    async def _refresh(self, keep_old: bool) -> None:
        try:
            self._keys = _key_map(await asyncio.to_thread(_fetch, str(self.settings.jwks_url)))
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            if not keep_old:  # a stale key set beats none while the identity provider is down
                raise GatewayError(ErrorKind.upstream_unavailable, "the JWKS could not be fetched") from exc
        else:
            self._fetched_at = time.monotonic()

    def _age(self) -> float:
        return time.monotonic() - self._fetched_at

    def _pick(self, kid: str | None) -> PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None


def _key_map(jwks: Mapping[str, Any]) -> dict[str, PyJWK]:
    keys = PyJWKSet.from_dict(dict(jwks)).keys
    return {str(k.key_id or i): k for i, k in enumerate(keys)}


def _fetch(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - an operator-configured URL
        data: dict[str, Any] = json.loads(resp.read())
    return data
