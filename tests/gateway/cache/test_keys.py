"""Key derivation: what makes two requests the same answer, and who may share it."""

from __future__ import annotations

from typing import Any

import pytest

from aistrata.core import ChatRequest, GatewayError, Message, ResponseFormat, TextPart, ToolChoice, ToolSpec
from aistrata.gateway.auth import ANONYMOUS, MASTER, Principal
from aistrata.gateway.cache import CacheControls, cache_key, tenant
from aistrata.store.keys import KeyRecord


def request(**overrides: Any) -> ChatRequest:
    fields: dict[str, Any] = {
        "model": "gpt",
        "messages": [Message("system", [TextPart("be brief")]), Message("user", [TextPart("hello")])],
        "temperature": 0.2,
        "tools": [ToolSpec("lookup", "find a thing", {"type": "object", "properties": {"q": {"type": "string"}}})],
    }
    fields.update(overrides)
    return ChatRequest(**fields)


def key(req: ChatRequest, tenant_id: str = "team:a", namespace: str = "") -> str:
    value: str = cache_key(req, tenant_id, namespace)
    return value


def principal(key_id: str, team: str | None = None) -> Principal:
    return Principal("key", KeyRecord(key_id, "hash", "sk-ast-x", team_id=team))


def test_same_request_same_key() -> None:
    assert key(request()) == key(request())
    # neutral equivalents: an int temperature, reordered schema keys
    assert key(request(temperature=1)) == key(request(temperature=1.0))
    reordered = [ToolSpec("lookup", "find a thing", {"properties": {"q": {"type": "string"}}, "type": "object"})]
    assert key(request(tools=reordered)) == key(request())


def test_fields_that_do_not_shape_the_answer_are_ignored() -> None:
    plain = key(request())
    assert key(request(user="ann", metadata={"trace": "1"}, stream=True, include_usage=True)) == plain
    assert key(request(options={"cache": {"ttl": 5}, "routing_strategy": "least-busy"})) == plain


@pytest.mark.parametrize("change", [
    {"temperature": 0.3},
    {"top_p": 0.5},
    {"max_tokens": 10},
    {"stop": ["\n"]},
    {"seed": 7},
    {"n": 2},
    {"model": "claude"},
    {"tools": [ToolSpec("lookup2")]},
    {"tools": None},
    {"tool_choice": ToolChoice("required")},
    {"response_format": ResponseFormat("json_object")},
    {"parallel_tool_calls": False},
    {"extra": {"frequency_penalty": 0.5}},
    {"messages": [Message("user", [TextPart("hello!")])]},
])
def test_answer_shaping_changes_change_the_key(change: dict[str, Any]) -> None:
    assert key(request(**change)) != key(request())


def test_tenants_and_namespaces_never_collide() -> None:
    req = request()
    keys = {key(req, t, ns) for t in ("team:a", "team:b", "key:k1", "master", "") for ns in ("", "x", "y")}
    assert len(keys) == 15
    # no concatenation ambiguity between tenant and namespace
    assert key(req, "team:a", "b") != key(req, "team:", "ab")


def test_tenant_by_team_key_or_none() -> None:
    alice, bob, loner = principal("k1", "blue"), principal("k2", "blue"), principal("k3")
    assert tenant(alice, "team") == tenant(bob, "team") == "team:blue"
    assert tenant(loner, "team") == "key:k3"
    assert tenant(alice, "key") != tenant(bob, "key")
    assert tenant(alice, "none") == tenant(MASTER, "none") == ""
    assert len({tenant(MASTER, "team"), tenant(ANONYMOUS, "team"), tenant(alice, "team")}) == 3


def test_controls_from_body_and_headers() -> None:
    body = CacheControls.parse({"no-cache": True, "ttl": 60, "namespace": "exp1", "s-maxage": 10})
    assert (body.no_cache, body.no_store, body.ttl, body.s_maxage, body.namespace) == (True, False, 60.0, 10.0, "exp1")
    headers = CacheControls.parse({"no-store": True, "ttl": "30"})  # as the data plane parses x-aistrata-cache*
    assert headers.no_store and headers.ttl == 30.0
    assert CacheControls.parse(None) == CacheControls()


@pytest.mark.parametrize("raw", ["yes", {"ttl": "soon"}, {"ttl": 0}, {"ttl": True}, {"namespace": 3}])
def test_bad_controls_are_a_client_error(raw: object) -> None:
    with pytest.raises(GatewayError) as info:
        CacheControls.parse(raw)
    assert info.value.kind.value == "bad_request"
