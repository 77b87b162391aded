"""Neutral requests and responses as the JSON a trace shows: messages with role and content.

Rendered when a request finishes (`SpanCapture.capture`), so that a record waiting for the writer
holds text rather than the request's and the answer's objects.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ...core import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, Message, StreamAccumulator


def request_payload(req: Any) -> Any:
    if isinstance(req, ChatRequest):
        return [message_json(m) for m in req.messages]
    if isinstance(req, EmbeddingRequest):
        return req.inputs
    return None


def response_payload(resp: Any) -> Any:
    if isinstance(resp, StreamAccumulator):
        resp = resp.response()
    if isinstance(resp, ChatResponse):
        return [_with_finish(message_json(c.message), c.finish_reason) for c in resp.choices]
    if isinstance(resp, EmbeddingResponse):
        # The vectors are the answer, but they are large and meaningless to read.
        return {"vectors": len(resp.vectors), "dimensions": len(resp.vectors[0]) if resp.vectors else 0}
    return None


def response_model(resp: Any) -> str | None:
    return getattr(resp, "model", None) or None


def _with_finish(message: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    message["finish_reason"] = finish_reason  # `message_json` made it: no copy needed
    return message


def message_json(m: Message) -> dict[str, Any]:
    """Plain text stays a string; other parts keep their fields with a `type`."""
    parts = m.parts
    if len(parts) == 1 and parts[0].kind == "text":  # the common message, without the generic walk
        return {"role": m.role, "content": parts[0].text}  # type: ignore[union-attr]
    if all(p.kind == "text" for p in parts):
        return {"role": m.role, "content": m.text}
    content = []
    for p in parts:
        fields = asdict(p)
        fields["type"] = fields.pop("kind")
        content.append(fields)
    return {"role": m.role, "content": content}
