"""Span attributes in the flavours applications send, mapped onto `Span` fields.

Read in order of preference: OTel GenAI (`gen_ai.*`, current names before the legacy ones
such as `gen_ai.system` and `gen_ai.usage.prompt_tokens`), then OpenInference (`llm.*`,
`openinference.span.kind`, `input.value`, `llm.token_count.*`), then common context keys
(`session.id`, `user.id`). Whatever is not mapped, including values of the wrong type, stays
in the span's metadata under its own name: an odd attribute never makes a span vanish.
"""

from __future__ import annotations

from typing import Any, Mapping

from .model import Span, SpanType

# field -> attribute names, best first.
_TEXT = {
    "provider_name": ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"),
    "operation_name": ("gen_ai.operation.name",),
    "request_model": ("gen_ai.request.model", "llm.model_name"),
    "response_model": ("gen_ai.response.model", "llm.model_name"),
    "session_id": ("gen_ai.conversation.id", "session.id", "langfuse.session.id"),
    "user_id": ("user.id", "enduser.id", "langfuse.user.id"),
    "error_type": ("error.type",),
}
_TOKENS = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"),
    "cache_read_tokens": ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                          "llm.token_count.prompt_details.cache_read"),
    "cache_creation_tokens": ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
                              "llm.token_count.prompt_details.cache_write"),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", "llm.token_count.completion_details.reasoning"),
}
_COST = ("gen_ai.usage.cost", "llm.cost.total")
_INPUT = ("gen_ai.input.messages", "input.value", "gen_ai.prompt")
_OUTPUT = ("gen_ai.output.messages", "output.value", "gen_ai.completion")
_TAGS = ("tag.tags", "langfuse.trace.tags", "aistrata.tags")
# Derived, so never worth keeping twice.
_IGNORED = frozenset({"llm.token_count.total", "gen_ai.usage.total_tokens"})

_OPERATION_TYPES: dict[str, SpanType] = {
    "chat": "generation", "text_completion": "generation", "generate_content": "generation",
    "embeddings": "embedding", "execute_tool": "tool", "invoke_agent": "agent", "create_agent": "agent",
    "invoke_workflow": "chain", "retrieval": "retriever",
}
_OPENINFERENCE_TYPES: dict[str, SpanType] = {
    "llm": "generation", "embedding": "embedding", "tool": "tool", "agent": "agent", "chain": "chain",
    "retriever": "retriever", "reranker": "retriever", "guardrail": "guardrail", "evaluator": "evaluator",
}
_TYPES = frozenset(SpanType.__args__)  # type: ignore[attr-defined]


def apply_attributes(span: Span, attrs: Mapping[str, Any], max_payload_bytes: int) -> None:
    """Fill `span` from `attrs`; unmapped attributes are merged into `span.metadata`."""
    used: set[str] = set(_IGNORED)
    for name, keys in _TEXT.items():
        found = _first(attrs, keys, used, str)
        if found is not None and getattr(span, name) is None:
            setattr(span, name, found)
    for name, keys in _TOKENS.items():
        found = _first(attrs, keys, used, _count)
        if found is not None:
            setattr(span, name, found)
    cost = _first(attrs, _COST, used, float)
    if cost is not None:
        span.cost_usd = cost
    tags = _first(attrs, _TAGS, used, _string_list)
    if tags:
        span.tags = [*span.tags, *(t for t in tags if t not in span.tags)]
    span.type = _span_type(span, attrs, used)
    input_value, output_value = _first(attrs, _INPUT, used, _same), _first(attrs, _OUTPUT, used, _same)
    if input_value is not None or output_value is not None:
        span.set_payloads(input_value, output_value, max_payload_bytes)
    for key, value in attrs.items():
        if key not in used:
            span.metadata[key] = value


def _span_type(span: Span, attrs: Mapping[str, Any], used: set[str]) -> SpanType:
    if span.operation_name in _OPERATION_TYPES:
        return _OPERATION_TYPES[span.operation_name]
    oi = attrs.get("openinference.span.kind")
    if isinstance(oi, str) and oi.lower() in _OPENINFERENCE_TYPES:
        used.add("openinference.span.kind")
        return _OPENINFERENCE_TYPES[oi.lower()]
    for key in ("langfuse.observation.type", "aistrata.span.type"):
        value = attrs.get(key)
        if isinstance(value, str) and value.lower() in _TYPES:
            used.add(key)
            return value.lower()  # type: ignore[return-value]
    if span.type != "span":
        return span.type
    return "generation" if span.request_model else "span"


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...], used: set[str], convert: Any) -> Any:
    """The first of `keys` whose value converts; the keys read are marked used (a value that
    does not convert is left for the metadata instead)."""
    for key in keys:
        if key in attrs:
            try:
                value = convert(attrs[key])
            except (TypeError, ValueError):
                continue
            used.add(key)
            return value
    return None


def _count(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a flag is not a count")
    number = int(float(value))
    if number < 0:
        raise ValueError("negative count")
    return number


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, (list, tuple)):
        return [str(t) for t in value]
    raise TypeError("tags must be text or a list")


def _same(value: Any) -> Any:
    return value
