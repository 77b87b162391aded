"""The `local` dialect: chat and embeddings served by models running in worker processes on this
machine, through the same `Dialect` protocol as every remote provider (the `http` client is unused).

Defaults come from the environment so `aistrata serve` needs no configuration:
`AISTRATA_LOCAL_THREADS` (llama.cpp/ONNX threads per worker, default 2),
`AISTRATA_LOCAL_CONCURRENCY` (workers per model, default 1), `AISTRATA_LOCAL_QUEUE` (waiting
requests per model before `rate_limit`, default 16). `model_info` overrides them per deployment.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import aclosing
from typing import Any, AsyncGenerator, AsyncIterator

from ...core import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    Message,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextDelta,
    TextPart,
    ToolResultPart,
    Usage,
    UsageReport,
    bad_request,
    new_id,
    now_ms,
)
from ..base import Deployment
from ..http import HttpClient
from . import catalogue
from .catalogue import Kind, ModelSpec, PoolLimits
from .pool import ModelPool

FINISH = {"stop": "stop", "length": "length"}


def messages_for_llama(messages: list[Message]) -> list[dict[str, str]]:
    """Neutral messages as the plain role/content dicts a GGUF chat template expects."""
    out = []
    for m in messages:
        if any(isinstance(p, ImagePart) for p in m.parts):
            raise bad_request("local models take text only", "messages")
        text = "".join(p.text if isinstance(p, TextPart) else p.content if isinstance(p, ToolResultPart) else ""
                       for p in m.parts)
        out.append({"role": m.role if m.role != "tool" else "user", "content": text})
    return out


def chat_payload(req: ChatRequest, stream: bool) -> dict[str, Any]:
    if req.tools:
        raise bad_request("local models do not support tools", "tools")
    if req.n != 1:
        raise bad_request("local models produce one choice (n=1)", "n")
    msg: dict[str, Any] = {
        "op": "chat", "stream": stream, "messages": messages_for_llama(req.messages),
        "max_tokens": req.max_tokens, "temperature": req.temperature, "top_p": req.top_p,
        "stop": req.stop, "seed": req.seed,
    }
    rf = req.response_format
    if rf is not None and rf.type != "text":
        # llama-cpp-python constrains the output with a grammar built from the schema.
        msg["response_format"] = {"type": "json_object"} | ({"schema": rf.schema} if rf.schema else {})
    return msg


def usage_of(done: dict[str, Any]) -> Usage:
    return Usage(input_tokens=done["usage"]["input"], output_tokens=done["usage"]["output"])


class LocalDialect:
    name = "local"

    def __init__(self, n_threads: int | None = None, limits: PoolLimits | None = None) -> None:
        env = os.environ
        self.n_threads = n_threads or int(env.get("AISTRATA_LOCAL_THREADS") or 2)
        self.limits = limits or PoolLimits(
            concurrency=int(env.get("AISTRATA_LOCAL_CONCURRENCY") or 1),
            max_queue=int(env.get("AISTRATA_LOCAL_QUEUE") or 16),
        )
        self._pools: dict[ModelSpec, ModelPool] = {}

    def pool(self, dep: Deployment, kind: Kind) -> ModelPool:
        spec = catalogue.resolve(dep.model, dep.info, self.n_threads)
        if spec.kind != kind:
            other = "/v1/embeddings" if spec.kind == "embedding" else "/v1/chat/completions"
            raise bad_request(f"local/{spec.name} is a {spec.kind} model: use {other}", "model")
        pool = self._pools.get(spec)
        if pool is None:
            pool = self._pools[spec] = ModelPool(spec, catalogue.limits(dep.info, self.limits))
        return pool

    async def _replies(self, req: ChatRequest, dep: Deployment, stream: bool) -> AsyncGenerator[dict[str, Any], None]:
        pool = self.pool(dep, "chat")
        payload = chat_payload(req, stream)
        async with pool.worker() as worker, aclosing(worker.request(payload, dep.timeout)) as replies:
            async for reply in replies:
                yield reply | {"pid": worker.pid}

    async def chat(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> ChatResponse:
        async with aclosing(self._replies(req, dep, stream=False)) as replies:
            done = [r async for r in replies][-1]
        message = Message("assistant", [TextPart(done["text"])] if done["text"] else [])
        details = {k: done[k] for k in ("started", "first_token", "ended", "pid")}
        return ChatResponse(
            id=new_id("chatcmpl-"), model=dep.model, created=now_ms() // 1000,
            choices=[Choice(0, message, FINISH.get(done["finish"], "stop"))],  # type: ignore[arg-type]
            usage=usage_of(done), provider_details={"local": details},
        )

    async def stream(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> AsyncIterator[StreamEvent]:
        async with aclosing(self._replies(req, dep, stream=True)) as replies:
            started = False
            async for reply in replies:
                if not started:  # start only once a worker answers, so load errors stay plain errors
                    started = True
                    yield StreamStart(new_id("chatcmpl-"), dep.model, now_ms() // 1000)
                if reply["type"] == "delta":
                    yield TextDelta(reply["text"])
                else:
                    yield StreamFinish(FINISH.get(reply["finish"], "stop"))  # type: ignore[arg-type]
                    yield UsageReport(usage_of(reply))

    async def embed(self, http: HttpClient, req: EmbeddingRequest, dep: Deployment) -> EmbeddingResponse:
        if not req.inputs:
            raise bad_request("input must not be empty", "input")
        pool = self.pool(dep, "embedding")
        payload = {"op": "embed", "inputs": req.inputs, "dimensions": req.dimensions}
        async with pool.worker() as worker, aclosing(worker.request(payload, dep.timeout)) as replies:
            reply = [r async for r in replies][-1]
        return EmbeddingResponse(dep.model, reply["vectors"], Usage(input_tokens=reply["tokens"]))

    async def list_models(self, http: HttpClient, dep: Deployment) -> list[str]:
        names = set(catalogue.BUILTIN_KINDS) | {spec.name for spec in self._pools}
        return sorted(names)

    async def aclose(self) -> None:
        """Stop every worker (they also exit on their own when the gateway process ends)."""
        await asyncio.gather(*(p.close() for p in self._pools.values()), return_exceptions=True)
        self._pools.clear()
