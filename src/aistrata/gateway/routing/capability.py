"""Capability filtering: keep only the deployments whose `model_info` says they can serve the
request. A capability the config does not mention is assumed supported.

    model_info: {max_input_tokens: 8192, supports_function_calling: false,
                 supports_vision: false, supports_response_schema: false}

The request's facts are computed lazily and at most once (`RequestProfile`), so a group
whose deployments declare nothing costs four dict lookups per deployment.
"""

from __future__ import annotations

from typing import Sequence

from ...core import ChatRequest, EmbeddingRequest, ImagePart
from ...providers.base import Deployment
from ...providers.tokens import count_tokens

CAPABILITY_KEYS = ("max_input_tokens", "supports_function_calling", "supports_vision", "supports_response_schema")
CONTEXT = "context window"  # the reason prefix that makes a context-window fallback apply


class RequestProfile:
    """What a request needs, for filtering and for the strategies that price or time it."""

    __slots__ = ("req", "stream", "_tokens")

    def __init__(self, req: ChatRequest | EmbeddingRequest, stream: bool = False) -> None:
        self.req = req
        self.stream = stream
        self._tokens: int | None = None

    def input_tokens(self, model: str) -> int:
        """Counted with the first model asked about; close enough for every other."""
        if self._tokens is None:
            req = self.req
            if isinstance(req, ChatRequest):
                self._tokens = count_tokens(model, req.messages).count
            else:
                self._tokens = sum(count_tokens(model, text).count for text in req.inputs)
        return self._tokens

    @property
    def output_tokens(self) -> int:
        req = self.req
        return (req.max_tokens or 0) if isinstance(req, ChatRequest) else 0

    def needs_tools(self) -> bool:
        return isinstance(self.req, ChatRequest) and bool(self.req.tools)

    def needs_vision(self) -> bool:
        req = self.req
        return isinstance(req, ChatRequest) and any(
            isinstance(p, ImagePart) for m in req.messages for p in m.parts)

    def needs_schema(self) -> bool:
        req = self.req
        return isinstance(req, ChatRequest) and req.response_format is not None and req.response_format.type == "json_schema"


def unfit_reason(dep: Deployment, profile: RequestProfile) -> str | None:
    """Why `dep` cannot serve the request, or None when it can (or declares nothing)."""
    info = dep.info
    window = info.get("max_input_tokens")
    if window is not None:
        tokens = profile.input_tokens(dep.model)
        if tokens > int(window):
            return f"{CONTEXT} {int(window)} < {tokens} input tokens"
    if info.get("supports_function_calling") is False and profile.needs_tools():
        return "no tool calling"
    if info.get("supports_vision") is False and profile.needs_vision():
        return "no vision"
    if info.get("supports_response_schema") is False and profile.needs_schema():
        return "no JSON schema output"
    return None


def declares_capabilities(dep: Deployment) -> bool:
    info = dep.info
    return any(k in info for k in CAPABILITY_KEYS) if info else False


def capable(candidates: Sequence[Deployment], profile: RequestProfile, filtered: dict[str, str]) -> Sequence[Deployment]:
    """`candidates` that can serve the request (the same sequence when none is excluded);
    each one left out is entered in `filtered` with its reason."""
    if not any(declares_capabilities(d) for d in candidates):
        return candidates
    kept: list[Deployment] = []
    for dep in candidates:
        reason = unfit_reason(dep, profile)
        if reason is None:
            kept.append(dep)
        else:
            filtered[dep.id] = reason
    return kept
