"""JWT bearer tokens: HS256 against the secured gateway; RS256 against a JWKS served from
loopback, including the identity provider rotating its keys."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from aistrata.core import GatewayError
from aistrata.security.jwt import JwtSettings, JwtVerifier

from .conftest import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, Tenancy


def token(claims: dict[str, Any] | None = None, key: Any = JWT_SECRET, alg: str = "HS256",
          kid: str | None = None, **over: Any) -> str:
    now = int(time.time())
    body = {"sub": "alice", "team": "acme", "role": "member", "iss": JWT_ISSUER, "aud": JWT_AUDIENCE,
            "iat": now, "nbf": now - 5, "exp": now + 300, **(claims or {}), **over}
    body = {k: v for k, v in body.items() if v is not None}  # None drops a claim
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


@pytest.mark.parametrize(("bad", "message"), [
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"nbf": int(time.time()) + 3600}, "not valid yet"),
    ({"iss": "https://evil.test/"}, "issuer"),
    ({"aud": "someone-else"}, "audience"),
    ({"role": "root"}, "role"),
    ({"sub": None}, "lacks"),
])
def test_bad_claims_are_refused(tenancy: Tenancy, bad: dict[str, Any], message: str) -> None:
    raw = token(bad)
    with tenancy.client() as http:
        r = http.get("/api/whoami", headers={"authorization": f"Bearer {raw}"})
    assert r.status_code == 401 and message in r.json()["error"]["message"], r.text


def test_valid_token_maps_claims_to_user_team_and_role(tenancy: Tenancy) -> None:
    with tenancy.client() as http:
        r = http.get("/api/whoami", headers={"authorization": f"Bearer {token(role='team_admin')}"})
        assert r.status_code == 200, r.text
        assert r.json() | {"reads": None} == {"kind": "jwt", "actor": "jwt:alice", "role": "team_admin",
                                              "key_id": None, "user_id": "alice", "team_id": "acme", "reads": None}
        # A member token may call models and reads its own (user) data only.
        member = {"authorization": f"Bearer {token()}"}
        r = http.post("/v1/chat/completions", headers=member, json={"model": "gpt", "messages": [
            {"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        tenancy.gw.flush()
        rows = http.get("/api/requests", headers=member).json()["data"]
        assert rows and {(row["user_id"], row["team_id"]) for row in rows} == {("alice", "acme")}
        assert http.get("/api/keys", headers=member).status_code == 403


def test_bad_signature_is_refused(tenancy: Tenancy) -> None:
    forged = token(key="not-the-secret-but-long-enough-0123456789")
    with tenancy.client() as http:
        r = http.get("/api/whoami", headers={"authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and "signature" in r.text


# ---- JWKS ----------------------------------------------------------------------------------

class Jwks:
    """A JWKS endpoint on loopback whose key set a test can replace (a key rotation)."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, kid: str) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        self.keys = [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]
        return key


@pytest.fixture()
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.server.shutdown()


async def test_jwks_and_key_rotation(jwks: Jwks) -> None:
    verifier = JwtVerifier(JwtSettings(issuer=JWT_ISSUER, audience=JWT_AUDIENCE, jwks_url=jwks.url))
    old = jwks.publish("k1")
    claims = await verifier.verify(token(key=old, alg="RS256", kid="k1"))
    assert (claims.user, claims.team, claims.role) == ("alice", "acme", "member")
    await verifier.verify(token(key=old, alg="RS256", kid="k1"))
    assert jwks.fetches == 1  # cached

    new = jwks.publish("k2")  # the identity provider rotates: k1 is gone, k2 signs
    time.sleep(1.1)  # refetches are at most once a second
    claims = await verifier.verify(token(key=new, alg="RS256", kid="k2", sub="bob"))
    assert claims.user == "bob" and jwks.fetches == 2
    with pytest.raises(GatewayError, match="unknown"):
        await verifier.verify(token(key=old, alg="RS256", kid="k1"))
    # A public key used as an HMAC secret (algorithm confusion) is refused.
    with pytest.raises(GatewayError):
        await verifier.verify(token(key="x" * 32, alg="HS256", kid="k2"))


async def test_inline_jwks() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "inline", "alg": "RS256"}
    verifier = JwtVerifier(JwtSettings(issuer=JWT_ISSUER, audience=JWT_AUDIENCE, jwks={"keys": [jwk]}))
    assert (await verifier.verify(token(key=key, alg="RS256", kid="inline", role="viewer"))).role == "viewer"
