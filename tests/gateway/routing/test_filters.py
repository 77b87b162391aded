"""Capability filtering, the complexity classifier and condition routes."""

from __future__ import annotations

from typing import Any

from aistrata.core import ResponseFormat
from aistrata.gateway.auth import Principal
from aistrata.gateway.context import RequestContext
from aistrata.gateway.routing.capability import RequestProfile, capable
from aistrata.gateway.routing.complexity import classify
from aistrata.gateway.routing.conditions import first_match
from aistrata.gateway.routing.policy import RouteRule
from aistrata.store.keys import KeyRecord

from .helpers import chat, dep

# ---- capability -------------------------------------------------------------------------------


def test_nothing_declared_keeps_the_same_candidates() -> None:
    deps = [dep("a"), dep("b")]
    filtered: dict[str, str] = {}
    assert capable(deps, RequestProfile(chat(tools=True, image=True)), filtered) is deps
    assert filtered == {}


def test_context_window_filters_by_token_count() -> None:
    small, big = dep("small", max_input_tokens=50), dep("big", max_input_tokens=100_000)
    filtered: dict[str, str] = {}
    kept = capable([small, big], RequestProfile(chat("word " * 200)), filtered)
    assert [d.id for d in kept] == ["big"]
    assert filtered["small"].startswith("context window 50 <")


def test_tools_vision_and_schema_are_filtered_only_when_needed() -> None:
    plain = dep("plain", supports_function_calling=False, supports_vision=False, supports_response_schema=False)
    full = dep("full", supports_function_calling=True)
    unknown = dep("unknown")
    cases: list[tuple[Any, str]] = [
        (chat(tools=True), "no tool calling"), (chat(image=True), "no vision"),
    ]
    schema = chat()
    schema.response_format = ResponseFormat("json_schema", {"type": "object"})
    cases.append((schema, "no JSON schema output"))
    for req, reason in cases:
        filtered: dict[str, str] = {}
        kept = capable([plain, full, unknown], RequestProfile(req), filtered)
        assert [d.id for d in kept] == ["full", "unknown"] and filtered == {"plain": reason}
    assert len(capable([plain, full], RequestProfile(chat()), {})) == 2  # a plain request needs nothing


# ---- complexity -------------------------------------------------------------------------------

SIMPLE = ["What is the capital of France?", "Say hello to my friend Bob.", "Translate 'good morning' into Spanish."]
HARD = [
    "Design an algorithm for a lock-free concurrent queue, prove its linearizability step by step, "
    "analyze the time complexity and explain why the ABA problem matters. It must not allocate on the hot "
    "path, should support at least 64 producers, and must handle edge cases. How does it compare to a "
    "mutex-based design, and why would the trade-offs change on ARM?\n```c\nstruct node { int v; };\n```",
    "Refactor this code to remove the race condition and justify each change formally:\n```python\n"
    "def transfer(a, b, n):\n    a.balance -= n\n    b.balance += n\n```\nConstraints:\n- must be atomic\n"
    "- must not deadlock\n- at most one lock per account\n1. explain how your invariant holds\n"
    "2. analyze why the original fails\n3. evaluate the implications for throughput",
]


def test_classifier_separates_simple_from_hard_prompts() -> None:
    for text in SIMPLE:
        assert classify(chat(text)).score < 0.2, text
    for text in HARD:
        assert classify(chat(text)).score > 0.5, text


def test_classifier_reports_its_features() -> None:
    verdict = classify(chat(HARD[0]))
    assert set(verdict.features) == {"length", "code", "reasoning", "constraints", "questions"}
    assert verdict.features["reasoning"] == 1.0


# ---- conditions -------------------------------------------------------------------------------


def _ctx(team: str | None = None, tags: list[str] | None = None, metadata: dict[str, Any] | None = None) -> RequestContext:
    key = KeyRecord(id="k1", key_hash="h", key_prefix="sk-ast-x", alias="ci", user_id="bob", team_id=team,
                    models=[], metadata={}, created_at=0)
    ctx = RequestContext("r", "openai", "chat", Principal("key", key))
    ctx.tags, ctx.metadata = tags or [], metadata or {}
    return ctx


RULES = (
    RouteRule(0, "kids-safe", team="kids"),
    RouteRule(1, "gpt-4o-mini", model="gpt-4o", tags=frozenset({"batch"})),
    RouteRule(2, "cheap", model="claude-*", metadata=(("tier", "free"),), key="ci"),
)


def test_conditions_first_match_wins() -> None:
    assert first_match(RULES, "anything", _ctx(team="kids", tags=["batch"])).use == "kids-safe"
    assert first_match(RULES, "gpt-4o", _ctx(tags=["batch", "x"])).use == "gpt-4o-mini"
    assert first_match(RULES, "gpt-4o-mini", _ctx(tags=["batch"])) is None  # model does not match
    assert first_match(RULES, "claude-haiku", _ctx(metadata={"tier": "free"})).use == "cheap"
    assert first_match(RULES, "claude-haiku", _ctx(metadata={"tier": "paid"})) is None
    assert first_match(RULES, "gpt-4o", _ctx(team="adults")) is None
