"""Cache entries as compact JSON bytes (orjson), for memory and Redis alike.

An entry is the neutral `ChatResponse` plus the provider and upstream model that originally
answered and what that call cost, which is what each hit saves. JSON
rather than pickle: an entry read back from a shared Redis can never execute code, and a
format change is a version bump rather than a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ...core import (
    ChatResponse,
    Choice,
    ImagePart,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)

VERSION = 1
PART_TYPES: dict[str, type[Part]] = {
    "text": TextPart, "image": ImagePart, "tool_call": ToolCallPart, "tool_result": ToolResultPart,
    "thinking": ThinkingPart,
}


@dataclass(slots=True)
class Entry:
    response: ChatResponse
    provider: str
    model: str
    stored_at: float                  # wall-clock seconds, for `s-maxage`
    cost_usd: float | None = None     # None when the model has no known price


def encode_entry(entry: Entry) -> bytes:
    # orjson writes slotted dataclasses natively, parts with their `kind` discriminator.
    return orjson.dumps({
        "v": VERSION, "provider": entry.provider, "model": entry.model, "at": entry.stored_at,
        "cost": entry.cost_usd, "response": entry.response,
    })


def decode_entry(data: bytes) -> Entry | None:
    """The entry, or None for anything this version cannot read (treated as a miss)."""
    try:
        raw = orjson.loads(data)
        if raw.get("v") != VERSION:
            return None
        return Entry(_response(raw["response"]), raw["provider"], raw["model"], float(raw["at"]), raw["cost"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def _response(raw: dict[str, Any]) -> ChatResponse:
    return ChatResponse(
        id=raw["id"],
        model=raw["model"],
        choices=[Choice(c["index"], _message(c["message"]), c["finish_reason"]) for c in raw["choices"]],
        usage=Usage(**raw["usage"]),
        created=raw["created"],
        provider_details=raw["provider_details"],
    )


def _message(raw: dict[str, Any]) -> Message:
    parts = [PART_TYPES[p["kind"]](**p) for p in raw["parts"]]
    return Message(raw["role"], parts, raw["name"])
