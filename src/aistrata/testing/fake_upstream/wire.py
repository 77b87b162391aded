"""Shared shapes between the ASGI core (`app.py`) and the dialect modules.

A dialect turns a parsed `Call` into either an `Answer` (a whole HTTP body)
or a `Stream` (pre-framed byte frames plus the dialect's broken and error
frames, so `app.py` can inject faults without knowing the wire format).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .faults import Faults

JSON = b"application/json"
SSE = b"text/event-stream"
Headers = list[tuple[bytes, bytes]]


class BadRequest(Exception):
    """A request the real API would reject with 400 (or `status`)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, kind: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.kind = kind


@dataclass(slots=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    op: str  # dialect operation, e.g. "chat", "embed", "models"
    path_model: str = ""  # model (or Azure deployment) taken from the URL
    seq: int = 0  # request number, used for deterministic ids


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: Headers = field(default_factory=list)
    usage: dict[str, Any] | None = None


@dataclass(slots=True)
class Stream:
    frames: list[bytes]
    content_type: bytes
    malformed: bytes  # a frame whose JSON does not parse
    error_frame: bytes  # the dialect's in-stream error event
    usage: dict[str, Any] | None
    sse: bool = True  # keep-alive comments and CRLF apply
    crlf_native: bool = False  # framing already uses CRLF (Gemini)
    headers: Headers = field(default_factory=list)


class Dialect(Protocol):
    name: str
    auth_optional: bool  # a missing key is fine unless the server requires an exact one

    def credential(self, call: Call) -> str | None:
        """The API key the client sent, or None."""

    def auth_error(self, call: Call, present: bool) -> Answer:
        """The dialect's answer to a missing (present=False) or wrong key."""

    def error(self, kind: str, status: int, message: str | None, call: Call, *,
              param: str | None = None, retry_after: float | None = None) -> Answer:
        """The dialect's HTTP error for an error kind (see faults.KIND_STATUS)."""

    def model(self, call: Call) -> str:
        """The raw model string of the request, profile suffix included."""

    def handle(self, call: Call, model: str, faults: Faults) -> Answer | Stream:
        """Serve the operation; `model` has the profile suffix removed."""


def body_dict(call: Call) -> dict[str, Any]:
    if not isinstance(call.body, dict):
        raise BadRequest("Request body must be a JSON object.")
    return call.body
