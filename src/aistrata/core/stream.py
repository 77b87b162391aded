"""The one streaming shape: every provider adapter yields these events, every ingress
dialect encodes them. A stream is

    StreamStart, (TextDelta | ThinkingDelta | ToolCallDelta)*, StreamFinish+, UsageReport?

`UsageReport` carries cumulative totals (the last one wins). A failure mid-stream is raised
from the iterator as a `GatewayError`; the ingress dialect turns it into an in-band error
event so the client never sees a clean-looking end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .messages import FinishReason, Usage


@dataclass(slots=True)
class StreamStart:
    id: str
    model: str
    created: int = 0


@dataclass(slots=True)
class TextDelta:
    text: str
    index: int = 0


@dataclass(slots=True)
class ThinkingDelta:
    text: str
    signature: str | None = None
    index: int = 0


@dataclass(slots=True)
class ToolCallDelta:
    """A fragment of tool call `call_index`; the first fragment carries `id` and `name`."""

    call_index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None
    index: int = 0


@dataclass(slots=True)
class StreamFinish:
    finish_reason: FinishReason
    index: int = 0


@dataclass(slots=True)
class UsageReport:
    usage: Usage


StreamEvent = Union[StreamStart, TextDelta, ThinkingDelta, ToolCallDelta, StreamFinish, UsageReport]
