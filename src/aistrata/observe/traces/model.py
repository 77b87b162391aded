"""The span: one row of the wide, append-only `spans` table (OTel GenAI aligned).

A trace is only a correlation id: its root span (no parent) stands for it, and the trace
context (session, user, key, team, tags) is copied onto every span so that no read needs a
join. Token counts follow the OTel rule used everywhere in AI Strata: cache reads and writes
are included in `input_tokens`, reasoning in `output_tokens`.

Payloads are stored as text with a size cap; a payload over the cap keeps its head and ends
with a visible marker saying how many bytes were cut, so nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from operator import attrgetter
from typing import Any, Literal

import orjson

SpanType = Literal[
    "generation", "embedding", "tool", "agent", "chain", "retriever", "guardrail", "evaluator", "event", "span",
]
SpanStatus = Literal["unset", "ok", "error"]
SpanSource = Literal["gateway", "otlp", "api"]

DEFAULT_MAX_PAYLOAD_BYTES = 32 * 1024
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_AGE = re.compile(r"^(\d+)([smhdw])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


# Unique, not secret (as `core.ids`): cheaper than os.urandom where getrandom is slow.
_random = random.Random()


def duration_ms(start_us: int, end_us: int) -> float:
    return max(0, end_us - start_us) / 1000


def new_trace_id() -> str:
    """32 lowercase hex (W3C-valid): 12 hex of epoch milliseconds, then 80 random bits (the
    right-most 7 bytes random, as W3C's random-trace-id flag asks). New traces sort by time, so
    the spans table's (trace_id, span_id) key grows at its right edge. With whole seconds first
    (as AWS X-Ray's ids) a second's traces still landed on random pages among that second's
    keys, and each batch dirtied them all: about 40% more WAL pages per span batch."""
    return f"{time.time_ns() // 1_000_000:012x}{_random.getrandbits(80):020x}"


def trace_id_for(request_id: str) -> str:
    """A new trace for a gateway request that came without one: the request id's 28 hex (12 of
    epoch ms, 16 random: see `core.ids`) and 4 random hex, so it sorts by time as
    `new_trace_id`'s do and reads as its request's at a glance, for less than half the cost."""
    return f"{request_id[-28:]}{_random.getrandbits(16):04x}"


def new_span_id() -> str:
    return f"{_random.getrandbits(64):016x}"


def now_us() -> int:
    return time.time_ns() // 1000


def parse_time_ms(text: str, now_ms: int | None = None) -> int:
    """Epoch milliseconds from `1767225600000`, an ISO 8601 date or time (UTC unless it says
    otherwise), or an age such as `15m`, `24h` or `7d` (that long before now)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    match = _AGE.match(text)
    if match:
        now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        return now - int(match.group(1)) * _UNIT_MS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not epoch ms, an ISO 8601 time or an age like 7d") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def normalise_trace_id(value: str) -> str:
    """A trace id as OTel wants it (32 lowercase hex). Other ids (`x-aistrata-trace-id: run-7`)
    map to a stable hash, so the same text always names the same trace, in writes and reads."""
    low = value.strip().lower()
    return low if _HEX32.match(low) else hashlib.md5(value.encode()).hexdigest()  # noqa: S324 - an id, not a secret


def normalise_span_id(value: str) -> str:
    low = value.strip().lower()
    return low if _HEX16.match(low) else hashlib.md5(value.encode()).hexdigest()[:16]  # noqa: S324


def cap_payload(value: Any, limit: int) -> tuple[str | None, int]:
    """`value` as stored text (JSON unless it is already text) and its full size in bytes.
    Over `limit` bytes, the head is kept and a marker names the number of bytes cut."""
    if value is None:
        return None, 0
    raw = value.encode() if isinstance(value, str) else orjson.dumps(value, default=str)
    size = len(raw)
    if size <= limit:
        return raw.decode(), size
    head = raw[:limit].decode(errors="ignore")  # never split a UTF-8 sequence
    return f"{head}…[truncated {size - len(head.encode())} bytes]", size


@dataclass(slots=True)
class Span:
    trace_id: str
    span_id: str
    name: str
    start_us: int
    end_us: int
    parent_span_id: str | None = None
    kind: str = "internal"            # OTel SpanKind, lower case
    type: SpanType = "span"
    status: SpanStatus = "unset"
    status_message: str | None = None
    error_type: str | None = None
    source: SpanSource = "api"
    service_name: str | None = None
    # Trace context, copied onto every span.
    session_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None
    team_id: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    # GenAI.
    provider_name: str | None = None
    operation_name: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    input: str | None = None           # capped text (see `cap_payload`)
    output: str | None = None
    input_bytes: int = 0               # size before the cap
    output_bytes: int = 0
    # Gateway-only.
    request_id: str | None = None
    deployment_id: str | None = None
    cache_hit: bool | None = None
    attempts: int | None = None
    overhead_ms: float | None = None

    @property
    def is_root(self) -> bool:
        return self.parent_span_id is None

    @property
    def duration_ms(self) -> float:
        return duration_ms(self.start_us, self.end_us)

    def set_payloads(self, input: Any, output: Any, limit: int) -> None:
        self.input, self.input_bytes = cap_payload(input, limit)
        self.output, self.output_bytes = cap_payload(output, limit)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the spool's line format)."""
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Span:
        return cls(**{k: v for k, v in data.items() if k in _FIELD_SET})

    def values(self) -> tuple[Any, ...]:
        """The fields in `FIELDS` order, in one C call (`store.SpanSink` makes its row from them)."""
        return _values(self)


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Span))
_FIELD_SET = frozenset(FIELDS)
_values = attrgetter(*FIELDS)
