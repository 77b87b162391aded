"""Checks on the request as a whole: size limits and structure.

`size` caps characters (per message and in total) and the number of messages; `schema`
limits the roles a caller may send, the number of tools, and validates `metadata` against
a JSON schema when one is configured.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...core import ChatRequest, EmbeddingRequest, ImagePart, TextPart, ToolResultPart
from ..findings import Finding


def _texts(req: ChatRequest | EmbeddingRequest) -> list[str]:
    if isinstance(req, EmbeddingRequest):
        return list(req.inputs)
    return ["".join(p.text if isinstance(p, TextPart) else p.content if isinstance(p, ToolResultPart) else ""
                    for p in m.parts) for m in req.messages]


class SizeCheck:
    name = "size"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.max_chars = int(options.get("max_chars") or 0)
        self.max_message_chars = int(options.get("max_message_chars") or 0)
        self.max_messages = int(options.get("max_messages") or 0)
        self.max_images = int(options.get("max_images") or 0)

    def inspect(self, req: ChatRequest | EmbeddingRequest) -> list[Finding]:
        texts = _texts(req)
        out = []
        if self.max_chars and sum(map(len, texts)) > self.max_chars:
            out.append(Finding(self.name, "TOO_MANY_CHARS"))
        if self.max_message_chars and any(len(t) > self.max_message_chars for t in texts):
            out.append(Finding(self.name, "MESSAGE_TOO_LONG"))
        if self.max_messages and len(texts) > self.max_messages:
            out.append(Finding(self.name, "TOO_MANY_MESSAGES"))
        if self.max_images and isinstance(req, ChatRequest):
            images = sum(isinstance(p, ImagePart) for m in req.messages for p in m.parts)
            if images > self.max_images:
                out.append(Finding(self.name, "TOO_MANY_IMAGES"))
        return out


class SchemaCheck:
    name = "schema"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.roles = set(options.get("roles") or ())
        self.max_tools = options.get("max_tools")
        self.metadata_schema = options.get("metadata_schema")
        if self.metadata_schema is not None:
            import jsonschema

            jsonschema.Draft202012Validator.check_schema(self.metadata_schema)  # a bad schema fails at start-up

    def inspect(self, req: ChatRequest | EmbeddingRequest) -> list[Finding]:
        if not isinstance(req, ChatRequest):
            return []
        out = []
        if self.roles and any(m.role not in self.roles for m in req.messages):
            out.append(Finding(self.name, "ROLE_NOT_ALLOWED"))
        if self.max_tools is not None and len(req.tools or ()) > int(self.max_tools):
            out.append(Finding(self.name, "TOO_MANY_TOOLS"))
        if self.metadata_schema is not None:
            import jsonschema

            if not jsonschema.Draft202012Validator(self.metadata_schema).is_valid(req.metadata or {}):
                out.append(Finding(self.name, "METADATA_INVALID"))
        return out
