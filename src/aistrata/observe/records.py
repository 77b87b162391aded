"""The request record: one row per client request, written by the recorder to the request log.

The row is also the gateway's span for the request (see `traces.gateway_span`): the trace
fields at the end are set before the record is queued, and the span is read back from them,
so a request is written once, not once to the request log and again to the spans table.

Token counts follow `core.Usage` (OTel): cache reads and writes are included in
`input_tokens`, reasoning tokens in `output_tokens`. `cost_usd` is None when the price is
unknown, never a guess; `price_version` says which price table produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from aistrata.core import Usage

Endpoint = Literal["chat", "messages", "embeddings"]
Ingress = Literal["openai", "anthropic"]


@dataclass(slots=True)
class RequestRecord:
    id: str
    ts: int  # epoch ms of the request's start
    endpoint: Endpoint = "chat"
    ingress: Ingress = "openai"
    key_id: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    requested_model: str | None = None
    deployment_id: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    stream: bool = False
    status: int = 200  # the HTTP status sent to the client
    error_kind: str | None = None
    error_message: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None  # None unless streamed
    overhead_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    price_version: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    cache_hit: bool = False
    saved_usd: float | None = None  # what a cache hit would have cost
    attempts: int = 1  # deployments tried (retries and fallbacks included)
    route: dict[str, Any] | None = None  # how the deployment was chosen (strategy, decisions)
    # The gateway span's own fields (`traces.gateway_span.SpanCapture` sets them); no trace id on
    # rows older than the spans' retention or than migration 0011 with no span to move.
    trace_id: str | None = None
    parent_span_id: str | None = None  # the client's span, when a trace context came in
    session_id: str | None = None
    end_user_id: str | None = None  # the end user the request names, else the key's user
    response_model: str | None = None
    input: str | None = None  # capped payload text (see `traces.model.cap_payload`)
    output: str | None = None
    input_bytes: int = 0  # size before the cap
    output_bytes: int = 0

    @property
    def span_id(self) -> str:
        """The gateway span's id: the request id's random part, so one links to the other."""
        return self.id[-16:]

    @property
    def usage(self) -> Usage:
        return Usage(
            self.input_tokens, self.output_tokens, self.cache_read_tokens,
            self.cache_write_tokens, self.reasoning_tokens,
        )

    def set_usage(self, usage: Usage) -> None:
        self.input_tokens = usage.input_tokens
        self.output_tokens = usage.output_tokens
        self.cache_read_tokens = usage.cache_read_tokens
        self.cache_write_tokens = usage.cache_write_tokens
        self.reasoning_tokens = usage.reasoning_tokens

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the spool file's line format)."""
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        """The inverse of `to_dict`; unknown keys (from a newer version's spool) are ignored."""
        return cls(**{k: v for k, v in data.items() if k in _FIELD_SET})


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RequestRecord))
_FIELD_SET = frozenset(FIELDS)
