"""Online evaluation: rules from the config, applied to finished requests off the request path.

    evaluations:
      - {name: json_valid, evaluator: json_validity, sample_rate: 1.0, models: [gpt]}
      - {name: helpful, evaluator: helpfulness, judge_model: gpt, sample_rate: 0.1}

`observe` (the recorder hook) only matches rules and rolls the sampling dice, then queues
references to the request and its answer; worker tasks build the sample, run the evaluator
and store the score. A full queue drops work (counted) instead of holding requests up.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...core import ChatRequest, ChatResponse, StreamAccumulator
from ..records import RequestRecord
from ..request_recording import ensure_priced
from .evaluators import Evaluator, Sample, build_evaluator
from .judge import EVAL_TAG, Judge
from .scores import Score, ScoreStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class EvalRule:
    name: str
    evaluator: Evaluator
    sample_rate: float = 1.0
    models: frozenset[str] = frozenset()  # empty: every model

    @classmethod
    def from_config(cls, spec: Mapping[str, Any], judge: Judge | None) -> EvalRule:
        name = spec.get("name") or spec.get("evaluator")
        if not name:
            raise ValueError("an evaluation rule needs a name or an evaluator")
        rate = float(spec.get("sample_rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"evaluation {name!r}: sample_rate must be within [0, 1]")
        return cls(str(name), build_evaluator(spec, judge), rate, frozenset(map(str, spec.get("models") or ())))

    def applies(self, rec: RequestRecord) -> bool:
        return not self.models or rec.requested_model in self.models


def transcript(req: ChatRequest | None) -> str:
    if req is None:
        return ""
    return "\n".join(f"{m.role}: {m.text}" for m in req.messages if m.text)


def answer_text(resp: Any) -> str:
    if isinstance(resp, StreamAccumulator):
        resp = resp.response()
    return resp.choices[0].message.text if isinstance(resp, ChatResponse) and resp.choices else ""


def context_text(metadata: Mapping[str, Any]) -> str | None:
    """Retrieved context an application passed in `metadata.context` (text or a list of texts)."""
    ctx = metadata.get("context")
    if isinstance(ctx, list):
        return "\n\n".join(map(str, ctx))
    return None if ctx is None else str(ctx)


class EvalWorker:
    """The recorder hook's other half: a bounded queue and a few worker tasks."""

    def __init__(self, rules: Sequence[EvalRule], scores: ScoreStore, *, rng: Callable[[], float] = random.random,
                 max_queue: int = 1000, concurrency: int = 2) -> None:
        self.rules = list(rules)
        self.scores = scores
        self.rng = rng
        self.concurrency = concurrency
        self.queue: asyncio.Queue[tuple[EvalRule, RequestRecord, Any, Any]] = asyncio.Queue(max_queue)
        self.dropped = 0
        self.failed = 0
        self._tasks: list[asyncio.Task[None]] = []

    def observe(self, rec: RequestRecord, ctx: Any) -> None:
        """On the request path (event loop thread): match, sample, enqueue."""
        if not self.rules or rec.error_kind is not None or rec.endpoint == "embeddings" or EVAL_TAG in rec.tags:
            return
        for rule in self.rules:
            if rule.applies(rec) and self.rng() < rule.sample_rate:
                try:
                    self.queue.put_nowait((rule, rec, ctx.request, ctx.response))
                except asyncio.QueueFull:
                    self.dropped += 1

    def start(self) -> None:
        if self.rules and not self._tasks:
            self._tasks = [asyncio.create_task(self._work(), name=f"aistrata-eval-{i}")
                           for i in range(self.concurrency)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            rule, rec, req, resp = await self.queue.get()
            try:
                await self.evaluate(rule, rec, req, resp)
            except Exception as exc:  # noqa: BLE001 - one bad evaluation must not stop the worker
                self.failed += 1
                log.warning("evaluation %s of %s failed: %s", rule.name, rec.id, exc)
            finally:
                self.queue.task_done()

    async def evaluate(self, rule: EvalRule, rec: RequestRecord, req: Any, resp: Any) -> Score | None:
        ensure_priced(rec)
        sample = Sample(transcript(req), answer_text(resp), None, context_text(rec.metadata), rec.latency_ms,
                        rec.cost_usd, rec.id)
        verdict = await rule.evaluator(sample)
        if verdict is None:
            return None
        score = Score("request", rec.id, rule.name, verdict.data_type, verdict.value, None, verdict.comment,
                      "EVAL", rule.evaluator.kind, verdict.judge_request_id)
        return await asyncio.to_thread(self.scores.add, score)
