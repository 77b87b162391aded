"""The provider-neutral message model every layer speaks.

A conversation is a list of `Message`s; each message holds typed parts (text, image, tool
call, tool result, thinking). Requests and responses for chat and embeddings wrap them.
These are plain dataclasses, not validating models: the hot path builds them from
already-parsed JSON once per request, and validation happens at the dialect boundary. The
parts, messages and answers are not slotted: orjson writes a dataclass from its `__dict__`
about five times faster than from slots, and the cache writes them for every request (its
key from the request's messages and tools) and every miss (its entry from the answer).

Usage follows the OpenTelemetry GenAI convention: cached input tokens are *included* in
`input_tokens` and reasoning tokens are *included* in `output_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

import orjson

from .errors import bad_request

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass
class TextPart:
    text: str
    kind: Literal["text"] = "text"


@dataclass
class ImagePart:
    """An image by URL; inline images are `data:<media type>;base64,...` URLs."""

    url: str
    detail: str | None = None
    kind: Literal["image"] = "image"

    @property
    def is_inline(self) -> bool:
        return self.url.startswith("data:")

    def inline_data(self) -> tuple[str, str]:
        """(media type, base64 payload) of a data URL."""
        header, _, payload = self.url.partition(",")
        media_type = header[5:].split(";", 1)[0] or "application/octet-stream"
        return media_type, payload


@dataclass
class ToolCallPart:
    """A call the model asks for. `arguments` is the JSON text as the model wrote it."""

    id: str
    name: str
    arguments: str
    kind: Literal["tool_call"] = "tool_call"

    def input(self) -> dict[str, Any]:
        """The arguments as the JSON object dialects other than OpenAI's send; empty text means
        no arguments. Anything else is the client's mistake, reported as a bad request."""
        if not self.arguments.strip():
            return {}
        try:
            value = orjson.loads(self.arguments)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise bad_request(f"tool call {self.id!r} ({self.name}) has arguments that are not a JSON object", "messages")
        return value


@dataclass
class ToolResultPart:
    tool_call_id: str
    content: str
    is_error: bool = False
    name: str | None = None
    kind: Literal["tool_result"] = "tool_result"


@dataclass
class ThinkingPart:
    text: str
    signature: str | None = None
    kind: Literal["thinking"] = "thinking"


Part = Union[TextPart, ImagePart, ToolCallPart, ToolResultPart, ThinkingPart]


@dataclass
class Message:
    role: Role
    parts: list[Part]
    name: str | None = None

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]


@dataclass
class ToolSpec:
    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


@dataclass
class ToolChoice:
    """`auto`, `none`, `required` (any tool) or `tool` (the one named)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None


@dataclass
class ResponseFormat:
    """`text`, `json_object` (any JSON) or `json_schema` (JSON matching `schema`)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[Message]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    n: int = 1
    user: str | None = None
    metadata: dict[str, Any] | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    include_usage: bool = False
    # Parameters the neutral model has no field for, passed through to dialects that know them.
    extra: dict[str, Any] = field(default_factory=dict)
    # Instructions for the gateway itself (cache controls, routing overrides); never sent upstream.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def system_text(self) -> str:
        return "\n\n".join(m.text for m in self.messages if m.role == "system")


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.reasoning_tokens += other.reasoning_tokens


@dataclass
class Choice:
    index: int
    message: Message
    finish_reason: FinishReason | None = "stop"


@dataclass
class ChatResponse:
    id: str
    model: str
    choices: list[Choice]
    usage: Usage = field(default_factory=Usage)
    created: int = 0
    # Anything provider-specific worth keeping (system fingerprint, stop sequence, ...).
    provider_details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EmbeddingRequest:
    model: str
    inputs: list[str]
    dimensions: int | None = None
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EmbeddingResponse:
    model: str
    vectors: list[list[float]]
    usage: Usage = field(default_factory=Usage)


@dataclass(slots=True)
class ModelInfo:
    """One entry of `GET /v1/models`."""

    id: str
    owned_by: str
    created: int = 0
