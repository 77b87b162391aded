"""Each built-in evaluator on a passing and a failing sample; config validation; sampling."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from aistrata.core import ChatRequest, ChatResponse, Choice, Message, TextPart
from aistrata.observe.evals import EvalRule, EvalWorker, Sample, build_evaluator
from aistrata.observe.records import RequestRecord

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

CASES = [
    ({"evaluator": "json_validity"}, Sample("q", '{"a": 1}'), Sample("q", "{a: 1")),
    ({"evaluator": "json_schema", "schema": SCHEMA}, Sample("q", '{"city": "Paris"}'), Sample("q", '{"city": 3}')),
    ({"evaluator": "regex", "pattern": r"\bParis\b"}, Sample("q", "It is Paris."), Sample("q", "It is Lyon.")),
    ({"evaluator": "exact_match"}, Sample("q", " Paris\n", expected="Paris"), Sample("q", "paris", expected="Paris")),
    ({"evaluator": "exact_match", "expected": "paris", "case_sensitive": False}, Sample("q", "PARIS"), Sample("q", "Lyon")),
    ({"evaluator": "length", "min": 2, "max": 3, "unit": "words"}, Sample("q", "two words"), Sample("q", "one")),
    ({"evaluator": "latency", "max_ms": 100}, Sample("q", "", latency_ms=99.0), Sample("q", "", latency_ms=101.0)),
    ({"evaluator": "cost", "max_usd": 0.01}, Sample("q", "", cost_usd=0.01), Sample("q", "", cost_usd=0.02)),
]


@pytest.mark.parametrize("spec, good, bad", CASES, ids=[f"{c[0]['evaluator']}-{i}" for i, c in enumerate(CASES)])
async def test_builtin_pass_and_fail(spec: dict, good: Sample, bad: Sample) -> None:
    evaluator = build_evaluator(spec)
    passed, failed = await evaluator(good), await evaluator(bad)
    assert passed is not None and passed.value == 1.0 and passed.data_type == "BOOLEAN"
    assert failed is not None and failed.value == 0.0


async def test_not_applicable_gives_no_verdict() -> None:
    assert await build_evaluator("exact_match")(Sample("q", "x")) is None
    assert await build_evaluator({"evaluator": "latency", "max_ms": 1})(Sample("q", "x")) is None


@pytest.mark.parametrize("spec, message", [
    ({"evaluator": "nope"}, "unknown evaluator"),
    ({"evaluator": "regex"}, "missing or bad parameter"),
    ({"evaluator": "json_schema", "schema": {"type": "nonsense"}}, "missing or bad parameter"),
    ({"evaluator": "helpfulness"}, "needs a judge_model"),
])
def test_bad_specs(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_evaluator(spec)


def _ctx() -> SimpleNamespace:
    req = ChatRequest("gpt", [Message("user", [TextPart("hi")])])
    resp = ChatResponse("id", "gpt", [Choice(0, Message("assistant", [TextPart('{"ok": true}')]))])
    return SimpleNamespace(request=req, response=resp)


def test_sampling_rate_with_injected_rng() -> None:
    draws = iter([0.05, 0.5, 0.09, 0.99, 0.0, 0.1])
    rule = EvalRule("j", build_evaluator("json_validity"), sample_rate=0.1, models=frozenset({"gpt"}))
    worker = EvalWorker([rule], scores=None, rng=lambda: next(draws))  # type: ignore[arg-type]
    for i in range(6):
        worker.observe(RequestRecord(id=f"r{i}", ts=0, requested_model="gpt"), _ctx())
    assert [item[1].id for item in worker.queue._queue] == ["r0", "r2", "r4"]  # draws below 0.1
    worker.observe(RequestRecord(id="other", ts=0, requested_model="claude"), _ctx())  # model not in the rule
    worker.observe(RequestRecord(id="judge", ts=0, requested_model="gpt", tags=["eval"]), _ctx())  # never judged
    worker.observe(RequestRecord(id="err", ts=0, requested_model="gpt", error_kind="timeout"), _ctx())
    assert worker.queue.qsize() == 3


def test_full_queue_drops_and_counts() -> None:
    rule = EvalRule("j", build_evaluator("json_validity"))
    worker = EvalWorker([rule], scores=None, max_queue=2)  # type: ignore[arg-type]
    for i in range(5):
        worker.observe(RequestRecord(id=f"r{i}", ts=0, requested_model="gpt"), _ctx())
    assert worker.queue.qsize() == 2 and worker.dropped == 3


def test_rule_validation() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        EvalRule.from_config({"name": "x", "evaluator": "json_validity", "sample_rate": 2}, None)
