"""Fault knobs for the fake upstream, and the model-name profile syntax.

A `Faults` value is read by every request. It can be set three ways:

* ``FakeUpstream(faults=Faults(status=429))`` or ``--delay-ms`` on the CLI;
* in process: ``fake.faults.status = 503`` (the server reads it live);
* over HTTP: ``POST /_fake/faults`` with a JSON object of knobs (merged into
  the current ones), ``GET`` to read them, ``DELETE`` to go back to the
  knobs the server started with.

A request can also pick faults through its model name alone, which lets a
gateway test drive a fault without talking to the fake: everything after the
first ``@`` is a comma-separated list of ``knob=value`` pairs applied on top
of the server's knobs, e.g. ``gpt-4o@status=429,retry_after=2`` or
``claude-x@cut_after=5``. The fake answers with the base name (``gpt-4o``).
Booleans take ``1/true/yes``; a bare knob name means true (``m@crlf``).

Error kinds (``error=``) and their default status: ``auth`` 401, ``invalid``
400, ``not_found`` 404, ``rate_limit`` 429, ``server`` 500, ``unavailable``
503, ``overloaded`` 529, ``context_length`` 400, ``content_filter`` 400.
Setting only ``status`` derives the kind from it (529 → overloaded, …).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

KIND_STATUS: dict[str, int] = {
    "auth": 401,
    "invalid": 400,
    "not_found": 404,
    "rate_limit": 429,
    "server": 500,
    "unavailable": 503,
    "overloaded": 529,
    "context_length": 400,
    "content_filter": 400,
}
_STATUS_KIND: dict[int, str] = {401: "auth", 403: "auth", 404: "not_found", 429: "rate_limit",
                                500: "server", 502: "server", 503: "unavailable", 529: "overloaded"}

USAGE_VARIANTS = ("standard", "null_choices", "with_choices", "second_to_last")


@dataclass(slots=True)
class Faults:
    """Every knob the fake understands. Chunk positions count data frames from 0."""

    delay_ms: float = 0.0  # before the response headers
    chunk_delay_ms: float = 0.0  # between stream frames
    status: int = 0  # non-zero: answer with this HTTP error
    error: str = ""  # error kind, see module docstring
    retry_after: float | None = None  # seconds, sent as `retry-after` on errors
    fail_first: int = 0  # >0: only the first N matching requests fail, then succeed
    stall_after: int | None = None  # go silent (socket open) before frame N
    stall_s: float = 30.0
    cut_after: int | None = None  # end the stream before frame N, no terminator
    cut_abort: bool = False  # cut by dropping the connection mid-body instead
    malformed_at: int | None = None  # insert a broken-JSON frame before frame N
    error_at: int | None = None  # in-stream error event before frame N, then end
    usage_variant: str = "standard"  # OpenAI include_usage shape, see USAGE_VARIANTS
    keepalive: bool = False  # `: keep-alive` comment before every SSE frame
    crlf: bool = False  # CRLF instead of LF in SSE framing
    cached_tokens: int = 0  # cache-read input tokens reported
    cache_write_tokens: int = 0  # Anthropic cache_creation_input_tokens
    reasoning_tokens: int = 0
    reply_words: int = 20
    parallel_tools: bool = False  # two tool calls instead of one

    def error_kind(self) -> str:
        """The effective error kind ('' when no error is configured)."""
        if self.error:
            return self.error
        if not self.status:
            return ""
        return _STATUS_KIND.get(self.status, "server" if self.status >= 500 else "invalid")

    def error_status(self) -> int:
        return self.status or KIND_STATUS.get(self.error, 0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, values: dict[str, Any]) -> None:
        """Set knobs from a JSON object; unknown names raise ValueError."""
        for name, value in values.items():
            if name not in _FIELD_TYPES:
                raise ValueError(f"unknown fault knob {name!r}")
            setattr(self, name, _coerce(name, value))


_FIELD_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(Faults)}


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELD_TYPES[name]
    if value is None and "None" in kind:
        return None
    if kind.startswith("bool"):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on", "")
    if kind.startswith("int"):
        return int(value)
    if kind.startswith("float"):
        return float(value)
    if name == "usage_variant" and value not in USAGE_VARIANTS:
        raise ValueError(f"usage_variant must be one of {USAGE_VARIANTS}")
    if name == "error" and value and value not in KIND_STATUS:
        raise ValueError(f"error must be one of {sorted(KIND_STATUS)}")
    return str(value)


@lru_cache(maxsize=256)
def parse_profile(spec: str) -> tuple[tuple[str, Any], ...]:
    """Parse ``status=429,retry_after=2`` into validated (knob, value) pairs."""
    pairs: list[tuple[str, Any]] = []
    for item in filter(None, spec.split(",")):
        name, _, raw = item.partition("=")
        name = name.strip()
        if name not in _FIELD_TYPES:
            raise ValueError(f"unknown fault knob {name!r} in model profile")
        pairs.append((name, _coerce(name, raw.strip())))
    return tuple(pairs)


def split_model(model: str) -> tuple[str, str]:
    """``gpt-4o@status=429`` → (``gpt-4o``, ``status=429``)."""
    base, _, spec = model.partition("@")
    return base, spec


def with_profile(base: Faults, spec: str) -> Faults:
    """The server knobs overlaid with a model-name profile (a copy)."""
    merged = dataclasses.replace(base)
    for name, value in parse_profile(spec):
        setattr(merged, name, value)
    return merged


@dataclass
class FailCounter:
    """Counts failures served per profile so `fail_first` can switch to success."""

    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def should_fail(self, faults: Faults, key: str) -> bool:
        if not faults.error_status():
            return False
        if faults.fail_first <= 0:
            return True
        with self.lock:
            served = self.counts.get(key, 0)
            if served >= faults.fail_first:
                return False
            self.counts[key] = served + 1
            return True

    def clear(self) -> None:
        with self.lock:
            self.counts.clear()
