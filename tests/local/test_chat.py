"""The local chat model (SmolLM2-135M-Instruct in a worker process), whole and streamed; the
worker's crash recovery; the per-model concurrency limit and queue bound."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal

import pytest

from aistrata.core import (
    ChatRequest,
    ErrorKind,
    GatewayError,
    Message,
    StreamFinish,
    StreamStart,
    TextDelta,
    TextPart,
    UsageReport,
)
from aistrata.providers.local import LocalDialect

from .conftest import CHAT, deployment, needs_models

pytestmark = [pytest.mark.asyncio(loop_scope="session"), needs_models]


def ask(text: str, **kwargs: object) -> ChatRequest:
    return ChatRequest(model=f"local/{CHAT}", messages=[Message("user", [TextPart(text)])], **kwargs)  # type: ignore[arg-type]


async def test_whole_answer(dialect: LocalDialect) -> None:
    resp = await dialect.chat(None, ask("What is the capital of France?", max_tokens=12, temperature=0), deployment(CHAT))
    choice = resp.choices[0]
    assert choice.message.role == "assistant" and choice.message.text.strip()
    assert choice.finish_reason in ("stop", "length")
    assert resp.usage.input_tokens > 5 and 0 < resp.usage.output_tokens <= 12
    assert resp.model == CHAT and resp.id


async def test_max_tokens_is_honoured_and_counted(dialect: LocalDialect) -> None:
    resp = await dialect.chat(None, ask("Write a long story about a dragon.", max_tokens=5, temperature=0), deployment(CHAT))
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage.output_tokens == 5


async def test_same_seed_same_answer(dialect: LocalDialect) -> None:
    req = ask("Name a colour.", max_tokens=8, temperature=1.0, seed=7)
    first, second = [await dialect.chat(None, req, deployment(CHAT)) for _ in range(2)]
    assert first.choices[0].message.text == second.choices[0].message.text


async def test_stream_matches_whole(dialect: LocalDialect) -> None:
    req = ask("Say hello to the user.", max_tokens=10, temperature=0)
    whole = await dialect.chat(None, req, deployment(CHAT))
    events = [e async for e in dialect.stream(None, req, deployment(CHAT))]
    assert isinstance(events[0], StreamStart)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1  # token by token, not one lump at the end
    assert "".join(d.text for d in deltas) == whole.choices[0].message.text
    finish, usage = events[-2], events[-1]
    assert isinstance(finish, StreamFinish) and finish.finish_reason == whole.choices[0].finish_reason
    assert isinstance(usage, UsageReport) and usage.usage == whole.usage


async def test_stop_sequence_ends_the_answer(dialect: LocalDialect) -> None:
    base = await dialect.chat(None, ask("Count from one to ten in words.", max_tokens=24, temperature=0), deployment(CHAT))
    text = base.choices[0].message.text
    words = text.split()
    assert len(words) > 2, text
    stop = words[2]  # a word from the middle of the unconstrained answer
    cut = await dialect.chat(None, ask("Count from one to ten in words.", max_tokens=24, temperature=0, stop=[stop]),
                             deployment(CHAT))
    assert stop not in cut.choices[0].message.text and cut.choices[0].finish_reason == "stop"
    assert cut.usage.output_tokens < base.usage.output_tokens


async def test_killed_worker_fails_in_flight_and_is_restarted(dialect: LocalDialect) -> None:
    dep = deployment(CHAT)
    stream = dialect.stream(None, ask("Write a long story about a dragon.", max_tokens=400), dep)
    with pytest.raises(GatewayError) as info:
        async for event in stream:
            if isinstance(event, TextDelta):
                [worker] = dialect.pool(dep, "chat").workers
                os.kill(worker.pid, signal.SIGKILL)
    assert info.value.kind is ErrorKind.upstream_unavailable
    resp = await dialect.chat(None, ask("Say hi.", max_tokens=4), dep)
    assert resp.choices[0].message.text and resp.provider_details["local"]["pid"] != worker.pid


async def test_kill_between_requests_is_recovered(dialect: LocalDialect) -> None:
    dep = deployment(CHAT)
    first = await dialect.chat(None, ask("Say hi.", max_tokens=4), dep)
    pid = first.provider_details["local"]["pid"]
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    second = await dialect.chat(None, ask("Say hi.", max_tokens=4), dep)
    assert second.choices[0].message.text and second.provider_details["local"]["pid"] != pid


async def test_one_request_at_a_time_per_worker(dialect: LocalDialect) -> None:
    dep = deployment(CHAT, concurrency=1)
    answers = await asyncio.gather(*(dialect.chat(None, ask(f"Say {w}.", max_tokens=6), dep) for w in ("a", "b", "c")))
    spans = sorted((a.provider_details["local"]["started"], a.provider_details["local"]["ended"]) for a in answers)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    assert len({a.provider_details["local"]["pid"] for a in answers}) == 1


async def test_queue_bound_refuses_with_retry_after(dialect: LocalDialect) -> None:
    dep = deployment(CHAT, concurrency=1, max_queue=1, n_ctx=1024)  # a pool of its own
    results = await asyncio.gather(*(dialect.chat(None, ask("Say hi.", max_tokens=4), dep) for _ in range(3)),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, GatewayError)]
    assert len(refused) == 1 and refused[0].kind is ErrorKind.rate_limit and refused[0].retry_after
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 2


async def test_context_overflow_is_a_context_length_error(dialect: LocalDialect) -> None:
    dep = deployment(CHAT, n_ctx=256)
    with pytest.raises(GatewayError) as info:
        await dialect.chat(None, ask("word " * 400, max_tokens=4), dep)
    assert info.value.kind is ErrorKind.context_length


async def test_embedding_model_refuses_chat(dialect: LocalDialect) -> None:
    with pytest.raises(GatewayError) as info:
        await dialect.chat(None, ask("hi"), deployment("wordllama"))
    assert info.value.kind is ErrorKind.bad_request


async def test_list_models_names_the_builtins(dialect: LocalDialect) -> None:
    names = await dialect.list_models(None, deployment(CHAT))
    assert {CHAT, "wordllama", "minilm-l6"} <= set(names)
