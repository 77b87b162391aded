"""The guard stages the pipeline runs: `InputGuard` (an admission stage) and `OutputGuard`
(an output check, with a stream filter per streamed answer).

Both resolve the caller's policies from the same `PolicySet`. When an output policy asks
for a canary, the input stage writes one into the system prompt and shares it with the
output stage by request id until the request settles.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..core import ChatRequest, ChatResponse, EmbeddingRequest, Message, TextPart, ToolResultPart
from .detectors.answers import canary_line, new_canary
from .engine import Decisions, Segment, apply, scan
from .findings import Env
from .policy import Policy, PolicySet
from .streaming import GuardStreamFilter


def input_segments(req: ChatRequest | EmbeddingRequest) -> tuple[list[Segment], list[str]]:
    """Every scannable text of the request, with the role of the message it belongs to."""
    segments: list[Segment] = []
    roles: list[str] = []
    if isinstance(req, EmbeddingRequest):
        for i, text in enumerate(req.inputs):
            segments.append(Segment(text, partial(req.inputs.__setitem__, i)))
            roles.append("user")
        return segments, roles
    for message in req.messages:
        for part in message.parts:
            if isinstance(part, TextPart):
                segments.append(Segment(part.text, partial(setattr, part, "text")))
            elif isinstance(part, ToolResultPart):
                segments.append(Segment(part.content, partial(setattr, part, "content")))
            else:
                continue
            roles.append(message.role)
    return segments, roles


def add_canary(req: ChatRequest, canary: str) -> None:
    line = canary_line(canary)
    for message in req.messages:
        if message.role == "system":
            message.parts.append(TextPart("\n\n" + line))
            return
    req.messages.insert(0, Message("system", [TextPart(line)]))


class InputGuard:
    def __init__(self, policies: PolicySet, canaries: dict[str, str]) -> None:
        self.policies = policies
        self.canaries = canaries

    async def admit(self, req: ChatRequest | EmbeddingRequest, ctx: Any) -> Any:
        policies = self.policies.for_principal(ctx.principal)
        inputs = [p for p in policies if "input" in p.where]
        if inputs:
            segments, roles = input_segments(req)

            def texts_for(policy: Policy) -> list[int]:
                return [i for i, role in enumerate(roles) if role in policy.roles]

            hits = await scan(inputs, texts_for, segments, Env(req), request=req)
            apply(hits, segments, Decisions(ctx), "input")
        if isinstance(req, ChatRequest) and any(p.canary and "output" in p.where for p in policies):
            canary = self.canaries[ctx.id] = new_canary()
            add_canary(req, canary)

            async def settle(ctx: Any) -> None:
                self.canaries.pop(ctx.id, None)

            return settle
        return None


class OutputGuard:
    def __init__(self, policies: PolicySet, canaries: dict[str, str]) -> None:
        self.policies = policies
        self.canaries = canaries

    def _policies(self, ctx: Any) -> list[Policy]:
        return [p for p in self.policies.for_principal(ctx.principal) if "output" in p.where]

    async def check_response(self, req: ChatRequest, ctx: Any, resp: ChatResponse) -> ChatResponse:
        policies = self._policies(ctx)
        if not policies:
            return resp
        segments = []
        for choice in resp.choices:
            parts = [p for p in choice.message.parts if isinstance(p, TextPart)]
            if parts:
                segments.append(Segment("".join(p.text for p in parts), partial(_rewrite, parts)))
        hits = await scan(policies, lambda p: list(range(len(segments))), segments, Env(req, self.canaries.get(ctx.id)))
        apply(hits, segments, Decisions(ctx), "output")
        return resp

    def stream_filter(self, req: ChatRequest, ctx: Any) -> GuardStreamFilter | None:
        policies = self._policies(ctx)
        if not policies:
            return None
        return GuardStreamFilter(policies, Env(req, self.canaries.get(ctx.id)), Decisions(ctx))


def _rewrite(parts: list[TextPart], text: str) -> None:
    """Masked answer text goes into the first text part; the others are emptied."""
    parts[0].text = text
    for p in parts[1:]:
        p.text = ""
