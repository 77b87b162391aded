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

from .messages import (
    ChatResponse,
    Choice,
    FinishReason,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)


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


class StreamAccumulator:
    """Rebuilds the whole answer from stream events: for traces, caches and checks that a
    streamed answer agrees with the whole one. Appending is all it does per event."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = 0
        self.usage = Usage()
        self._text: dict[int, list[str]] = {}
        self._thinking: dict[int, list[str]] = {}
        self._calls: dict[tuple[int, int], list[str | None]] = {}  # (choice, call) -> [id, name, args...]
        self._finish: dict[int, FinishReason] = {}

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self._text.setdefault(event.index, []).append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = self._calls.setdefault((event.index, event.call_index), [None, None])
            call[0] = event.id or call[0]
            call[1] = event.name or call[1]
            call.append(event.arguments)
        elif isinstance(event, StreamFinish):
            self._finish[event.index] = event.finish_reason
        elif isinstance(event, UsageReport):
            self.usage = event.usage
        elif isinstance(event, ThinkingDelta):
            self._thinking.setdefault(event.index, []).append(event.text)
        elif isinstance(event, StreamStart):
            self.id, self.model, self.created = event.id, event.model, event.created

    def response(self) -> ChatResponse:
        indexes = sorted(set(self._text) | set(self._finish) | set(self._thinking) | {c for c, _ in self._calls})
        choices = []
        for i in indexes or [0]:
            parts: list[Part] = []
            if i in self._thinking:
                parts.append(ThinkingPart("".join(self._thinking[i])))
            if i in self._text:
                parts.append(TextPart("".join(self._text[i])))
            for (choice, _), call in sorted(self._calls.items()):
                if choice == i:
                    parts.append(ToolCallPart(call[0] or "", call[1] or "", "".join(a or "" for a in call[2:])))
            choices.append(Choice(i, Message("assistant", parts), self._finish.get(i)))
        return ChatResponse(self.id, self.model, choices, self.usage, self.created)
