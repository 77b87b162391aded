"""Errors reach each client in its own dialect, with the right status and class."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture()
def oai(gateway: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)


@pytest.fixture()
def ant(gateway: GatewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0)


UPSTREAM_FAULTS = [
    # (fault profile, OpenAI SDK class, status, OpenAI error code)
    ("error=auth", openai.AuthenticationError, 401, "invalid_api_key"),
    ("status=429,retry_after=7", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("error=context_length", openai.BadRequestError, 400, "context_length_exceeded"),
    ("error=content_filter", openai.BadRequestError, 400, "content_policy_violation"),
    ("status=503", openai.InternalServerError, 503, "upstream_unavailable"),
    ("status=500", openai.InternalServerError, 503, "upstream_unavailable"),
]


@pytest.mark.parametrize("provider", ["openai/gpt-4o-mini", "anthropic/claude-x", "gemini/gemini-x"])
@pytest.mark.parametrize(("fault", "cls", "status", "code"), UPSTREAM_FAULTS)
def test_upstream_errors_in_openai_dialect(oai: openai.OpenAI, upstream: FakeUpstream, provider: str, fault: str,
                                           cls: type, status: int, code: str) -> None:
    with pytest.raises(cls) as info:
        oai.chat.completions.create(model=f"{provider}@{fault}", messages=MSG)
    assert info.value.status_code == status
    assert info.value.code == code
    if "retry_after" in fault:
        assert info.value.response.headers["retry-after"] == "7"


def test_anthropic_overloaded_maps_to_unavailable(oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model="anthropic/claude-x@status=529", messages=MSG)
    assert info.value.status_code == 503


ANTHROPIC_FAULTS = [
    ("error=auth", anthropic.AuthenticationError, "authentication_error"),
    ("status=429,retry_after=3", anthropic.RateLimitError, "rate_limit_error"),
    ("error=context_length", anthropic.BadRequestError, "invalid_request_error"),
    ("status=503", anthropic.InternalServerError, "overloaded_error"),
]


@pytest.mark.parametrize("provider", ["openai/gpt-4o-mini", "anthropic/claude-x"])
@pytest.mark.parametrize(("fault", "cls", "etype"), ANTHROPIC_FAULTS)
def test_upstream_errors_in_anthropic_dialect(ant: anthropic.Anthropic, upstream: FakeUpstream, provider: str,
                                              fault: str, cls: type, etype: str) -> None:
    with pytest.raises(cls) as info:
        ant.messages.create(model=f"{provider}@{fault}", max_tokens=20, messages=MSG)
    body = info.value.body
    assert body["type"] == "error" and body["error"]["type"] == etype


def test_timeout_and_unreachable(oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model="slow", messages=MSG)
    assert info.value.status_code == 504 and info.value.code == "upstream_timeout"
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model="down", messages=MSG)
    assert info.value.status_code == 503


@pytest.mark.parametrize("fault", ["cut_after=6", "malformed_at=6", "error_at=6", "cut_after=6,cut_abort"])
@pytest.mark.parametrize("provider", ["openai/gpt-4o-mini", "anthropic/claude-x", "gemini/gemini-x"])
def test_stream_failure_after_first_byte_is_an_error_event(oai: openai.OpenAI, upstream: FakeUpstream, provider: str,
                                                           fault: str) -> None:
    received = []
    with pytest.raises(openai.APIError):
        for chunk in oai.chat.completions.create(model=f"{provider}@{fault}", messages=MSG, stream=True):
            received.append(chunk)
    assert received, "some content arrived before the failure"


def test_stream_stall_ends_with_error_event(oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.APIError) as info:
        list(oai.chat.completions.create(model="stalls", messages=MSG, stream=True))
    assert "stall" in str(info.value.message)


def test_stream_failure_before_first_byte_is_a_plain_error(oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        list(oai.chat.completions.create(model="openai/gpt-4o-mini@cut_after=1", messages=MSG, stream=True))
    assert info.value.status_code == 503


def test_anthropic_stream_failure_is_an_error_event(ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    with pytest.raises(anthropic.APIError):
        with ant.messages.stream(model="openai/gpt-4o-mini@cut_after=6", max_tokens=50, messages=MSG) as stream:
            for _ in stream:
                pass


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": MSG}, "model"),
    ({"model": "gpt"}, "messages"),
    ({"model": "gpt", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
    ({"model": "gpt", "messages": MSG, "temperature": "hot"}, "temperature"),
    ({"model": "gpt", "messages": MSG, "tools": [{"type": "function"}]}, "tools[0]"),
])
def test_bad_openai_requests(gateway: GatewayServer, body: dict, param: str) -> None:
    r = httpx.post(gateway.url + "/v1/chat/completions", json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param and err["message"]


def test_malformed_json_and_unknown_model(gateway: GatewayServer) -> None:
    r = httpx.post(gateway.url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(gateway.url + "/v1/chat/completions", content=b"\xff\xfe\xfa")
    assert r.status_code == 400
    r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "no-such-model", "messages": MSG})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = httpx.post(gateway.url + "/v1/messages", json={"model": "gpt", "messages": MSG})
    assert r.status_code == 400 and r.json()["type"] == "error"  # max_tokens is required in this dialect


def test_oversized_body(gateway: GatewayServer) -> None:
    r = httpx.post(gateway.url + "/v1/chat/completions", content=b"x" * (33 << 20))
    assert r.status_code == 413
