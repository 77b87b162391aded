"""The perimeter: per-key IP allowlists, body size caps, TLS and mutual TLS with real
certificates made at test time, served by real `aistrata serve` processes over loopback."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY, gateway_config, provider_env

from .conftest import Tenancy, serve, stop

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}


def test_ip_allowlist(tenancy: Tenancy) -> None:
    with tenancy.client() as http:
        outside = http.post("/api/keys", headers=ADMIN, json={"metadata": {"allowed_ips": ["10.0.0.0/8"]}}).json()
        inside = http.post("/api/keys", headers=ADMIN, json={"metadata": {"allowed_ips": ["127.0.0.0/8", "::1/128"]}})
        for key, status in ((outside["key"], 403), (inside.json()["key"], 200)):
            h = {"authorization": f"Bearer {key}"}
            r = http.post("/v1/chat/completions", headers=h, json=CHAT)
            assert r.status_code == status, r.text
            assert http.get("/api/whoami", headers=h).status_code == status
        assert "address" in http.get("/api/whoami", headers={"authorization": f"Bearer {outside['key']}"}).text
        r = http.post("/api/keys", headers=ADMIN, json={"metadata": {"allowed_ips": ["10.0.0.0/99"]}})
        assert r.status_code == 400 and "CIDR" in r.text


@pytest.fixture(scope="module")
def small_bodies(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = {**gateway_config(fake.url), "security": {"max_body_bytes": 4096, "access_log": True}}
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY}
    with GatewayServer(data_dir=tmp_path_factory.mktemp("gw-small"), config=config, env=env) as gw:
        yield gw


def test_body_size_limit_is_configurable(small_bodies: GatewayServer) -> None:
    big = "x" * 8000
    with httpx.Client(base_url=small_bodies.url, headers=ADMIN) as http:
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
        r = http.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": big}]})
        assert r.status_code == 413 and r.json()["error"]["message"]
        r = http.post("/v1/messages", json={"model": "gpt", "max_tokens": 5, "messages": [
            {"role": "user", "content": big}]})
        assert r.status_code == 413 and r.json()["type"] == "error"  # Anthropic's shape
        assert http.post("/api/keys", json={"alias": big}).status_code == 413

        def chunks() -> Iterator[bytes]:  # no content-length: counted as it is read
            yield b'{"alias": "'
            yield big.encode()
            yield b'"}'

        r = http.post("/api/keys", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text


def test_access_log_has_one_line_per_request_and_no_secrets(small_bodies: GatewayServer,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="aistrata.access"), httpx.Client(base_url=small_bodies.url) as http:
        http.post("/v1/chat/completions?token=abc", json=CHAT, headers=ADMIN)
        http.get("/api/keys", headers={"authorization": "Bearer sk-ast-wrong"})
    lines = [r.getMessage() for r in caplog.records if r.name == "aistrata.access"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("POST /v1/chat/completions 200 key=master ip=127.0.0.1 ")
    assert lines[1].startswith("GET /api/keys 401 key=- ip=127.0.0.1 ")
    assert not any(s in "".join(lines) for s in (MASTER_KEY, "sk-ast-wrong", "token=abc"))


# ---- TLS -----------------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
          ca: bool = False, server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject))
               .issuer_name(issuer[0] if issuer else _name(subject)).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all made now."""
    tmp = tmp_path_factory.mktemp("pki")
    files: dict[str, Path] = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test CA", ca_key, None, ca=True)
    for name, cert, key in [("ca", ca, ca_key)] + [
        (n, _cert(n, k, (ca.subject, ca_key), server=n == "server"), k)
        for n, k in (("server", ec.generate_private_key(ec.SECP256R1())),
                     ("client", ec.generate_private_key(ec.SECP256R1())))
    ]:
        files[name] = tmp / f"{name}.pem"
        files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{name}-key"] = tmp / f"{name}-key.pem"
        files[f"{name}-key"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return files


def _context(pki: dict[str, Path], client_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    if client_cert:
        ctx.load_cert_chain(str(pki["client"]), str(pki["client-key"]))
    return ctx


def _ready(pki: dict[str, Path]) -> object:
    def check(served: object) -> bool:
        return httpx.get(served.url + "/health", verify=_context(pki, True), timeout=1).status_code == 200  # type: ignore[attr-defined]
    return check


def test_tls_and_mutual_tls(fake: FakeUpstream, pki: dict[str, Path], tmp_path: Path) -> None:
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY}
    tls = serve(tmp_path / "tls", gateway_config(fake.url), env, "--tls-cert", str(pki["server"]), "--tls-key",
                str(pki["server-key"]), "--limit-concurrency", "64", scheme="https", ready=_ready(pki))
    try:
        r = httpx.post(tls.url + "/v1/chat/completions", json=CHAT, headers=ADMIN, verify=_context(pki, False))
        assert r.status_code == 200, r.text
        with pytest.raises(httpx.ConnectError):  # no trust in an unknown CA
            httpx.get(tls.url + "/health", verify=ssl.create_default_context())
    finally:
        stop(tls)
    mtls = serve(tmp_path / "mtls", gateway_config(fake.url), env, "--tls-cert", str(pki["server"]), "--tls-key",
                 str(pki["server-key"]), "--tls-client-ca", str(pki["ca"]), scheme="https", ready=_ready(pki))
    try:
        r = httpx.post(mtls.url + "/v1/chat/completions", json=CHAT, headers=ADMIN, verify=_context(pki, True))
        assert r.status_code == 200, r.text
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(mtls.url + "/health", verify=_context(pki, False))  # no client certificate
    finally:
        stop(mtls)
