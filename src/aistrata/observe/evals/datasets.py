"""Datasets (inputs with expected outputs) and runs that send them through models to compare.

A run sends every item through each model via the gateway (recorded and priced like any
call, tagged `eval`), scores each answer with the run's evaluators and stores per item the
output, scores, latency and cost. `report` compares the models: mean score per evaluator,
mean latency, total cost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from ...core import ChatRequest, GatewayError, Message, TextPart, bad_request, new_id, now_ms
from ...gateway.auth import MASTER
from ...gateway.context import RequestContext
from ...gateway.pipeline import Gateway
from ...store.db import Database, from_json, to_json
from ..request_recording import ensure_priced, to_record
from .evaluators import Evaluator, Sample, build_evaluator
from .judge import EVAL_TAG, Judge
from .online import answer_text, transcript

log = logging.getLogger(__name__)
ROLES = ("system", "user", "assistant")


def parse_messages(raw: Any) -> list[Message]:
    """An item's input: a string (one user message) or OpenAI-style text messages."""
    if isinstance(raw, str):
        return [Message("user", [TextPart(raw)])]
    if not isinstance(raw, list) or not raw:
        raise bad_request("'input' must be a string or a non-empty list of messages", "input")
    out = []
    for m in raw:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or m.get("role") not in ROLES:
            raise bad_request("each message needs a role (system, user, assistant) and text content", "input")
        out.append(Message(m["role"], [TextPart(content)]))
    return out


class DatasetStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, description: str | None = None, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.db.fetchone("SELECT id FROM datasets WHERE name = ?", (name,)):
            raise bad_request(f"a dataset named {name!r} exists already", "name")
        row = {"id": new_id("ds_"), "name": name, "description": description, "metadata": metadata or {},
               "created_at": now_ms()}
        self.db.execute("INSERT INTO datasets (id, name, description, metadata, created_at) VALUES (?, ?, ?, ?, ?)",
                        (row["id"], name, description, to_json(row["metadata"]), row["created_at"]))
        return row

    def list(self) -> list[dict[str, Any]]:
        rows = self.db.fetchall("SELECT id, name, description, metadata, created_at FROM datasets ORDER BY created_at")
        return [{**r, "metadata": from_json(r["metadata"])} for r in rows]

    def get(self, id: str) -> dict[str, Any] | None:
        row = self.db.fetchone("SELECT id, name, description, metadata, created_at FROM datasets WHERE id = ?", (id,))
        return None if row is None else {**row, "metadata": from_json(row["metadata"])}

    def add_items(self, dataset_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for item in items:
            parse_messages(item.get("input"))  # validate before anything is written
            expected = item.get("expected_output")
            rows.append({"id": new_id("dsi_"), "dataset_id": dataset_id, "input": item["input"],
                         "expected_output": None if expected is None else str(expected),
                         "metadata": item.get("metadata") or {}, "created_at": now_ms()})
        self.db.executemany(
            "INSERT INTO dataset_items (id, dataset_id, input, expected_output, metadata, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(r["id"], dataset_id, to_json(r["input"]), r["expected_output"], to_json(r["metadata"]), r["created_at"])
             for r in rows],
        )
        return rows

    def items(self, dataset_id: str) -> list[dict[str, Any]]:
        rows = self.db.fetchall(
            "SELECT id, dataset_id, input, expected_output, metadata, created_at FROM dataset_items "
            "WHERE dataset_id = ? ORDER BY created_at, id", (dataset_id,))
        return [{**r, "input": from_json(r["input"]), "metadata": from_json(r["metadata"])} for r in rows]


class Runs:
    """Creates, executes and reports dataset runs."""

    def __init__(self, db: Database, datasets: DatasetStore, gateway: Gateway, judge: Judge) -> None:
        self.db = db
        self.datasets = datasets
        self.gateway = gateway
        self.judge = judge
        self._tasks: set[asyncio.Task[None]] = set()

    def create(self, dataset_id: str, models: list[str], evaluators: list[Any]) -> tuple[dict[str, Any], list[Evaluator]]:
        try:
            built = [build_evaluator(spec, self.judge) for spec in evaluators]
        except ValueError as exc:
            raise bad_request(str(exc), "evaluators") from exc
        for model in models:
            self.gateway.router.resolve(model)  # an unknown model fails now, not item by item
        run = {"id": new_id("run_"), "dataset_id": dataset_id, "models": models, "evaluators": evaluators,
               "status": "running", "created_at": now_ms(), "finished_at": None}
        self.db.execute(
            "INSERT INTO eval_runs (id, dataset_id, models, evaluators, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (run["id"], dataset_id, to_json(models), to_json(evaluators), "running", run["created_at"]))
        return run, built

    def start(self, run: dict[str, Any], evaluators: list[Evaluator]) -> None:
        """Execute in the background; the run's status turns `done` (or `failed`)."""
        task = asyncio.create_task(self._execute(run, evaluators))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, run: dict[str, Any], evaluators: list[Evaluator]) -> None:
        status = "done"
        try:
            items = await asyncio.to_thread(self.datasets.items, run["dataset_id"])
            for model in run["models"]:
                for item in items:
                    row = await self._run_item(run["id"], model, item, evaluators)
                    await asyncio.to_thread(self._insert_item, row)
        except Exception:  # noqa: BLE001 - reported on the run, not lost in a task
            log.exception("run %s failed", run["id"])
            status = "failed"
        await asyncio.to_thread(self.db.execute, "UPDATE eval_runs SET status = ?, finished_at = ? WHERE id = ?",
                                (status, now_ms(), run["id"]))

    async def _run_item(self, run_id: str, model: str, item: dict[str, Any], evaluators: list[Evaluator]) -> dict[str, Any]:
        ctx = RequestContext(new_id("req_"), "openai", "chat", MASTER, tags=[EVAL_TAG],
                             metadata={"run_id": run_id, "dataset_item_id": item["id"]})
        req = ChatRequest(model=model, messages=parse_messages(item["input"]))
        row: dict[str, Any] = {"id": new_id("runi_"), "run_id": run_id, "item_id": item["id"], "model": model,
                               "request_id": ctx.id, "output": None, "error": None, "scores": {}}
        try:
            resp = await self.gateway.chat(req, ctx)
            self.gateway.finish(ctx, 200)
            row["output"] = answer_text(resp)
        except GatewayError as err:
            self.gateway.finish(ctx, err.status, err)
            row["error"] = err.message
        rec = ensure_priced(to_record(ctx))
        row["latency_ms"], row["cost_usd"] = rec.latency_ms, rec.cost_usd
        if row["output"] is not None:
            sample = Sample(transcript(req), row["output"], item["expected_output"], None, rec.latency_ms,
                            rec.cost_usd, ctx.id)
            for ev in evaluators:
                verdict = await ev(sample)
                if verdict is not None:
                    row["scores"][ev.kind] = verdict.value
        return row

    def _insert_item(self, row: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO eval_run_items (id, run_id, item_id, model, request_id, output, error, latency_ms, "
            "cost_usd, scores, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row["id"], row["run_id"], row["item_id"], row["model"], row["request_id"], row["output"], row["error"],
             row["latency_ms"], row["cost_usd"], to_json(row["scores"]), now_ms()))

    def report(self, run_id: str) -> dict[str, Any] | None:
        run = self.db.fetchone("SELECT id, dataset_id, models, evaluators, status, created_at, finished_at "
                               "FROM eval_runs WHERE id = ?", (run_id,))
        if run is None:
            return None
        items = self.db.fetchall(
            "SELECT id, item_id, model, request_id, output, error, latency_ms, cost_usd, scores FROM eval_run_items "
            "WHERE run_id = ? ORDER BY created_at, id", (run_id,))
        per_model: dict[str, dict[str, Any]] = defaultdict(lambda: {"items": 0, "errors": 0, "latencies": [],
                                                                    "cost_usd": 0.0, "scores": defaultdict(list)})
        for it in items:
            it["scores"] = from_json(it["scores"])
            m = per_model[it["model"]]
            m["items"] += 1
            m["errors"] += it["error"] is not None
            m["cost_usd"] += it["cost_usd"] or 0.0
            if it["latency_ms"] is not None:
                m["latencies"].append(it["latency_ms"])
            for name, value in it["scores"].items():
                m["scores"][name].append(value)
        models = {
            name: {"items": m["items"], "errors": m["errors"], "total_cost_usd": m["cost_usd"],
                   "mean_latency_ms": sum(m["latencies"]) / len(m["latencies"]) if m["latencies"] else None,
                   "mean_scores": {k: sum(v) / len(v) for k, v in m["scores"].items()}}
            for name, m in per_model.items()
        }
        return {**run, "models": from_json(run["models"]), "evaluators": from_json(run["evaluators"]),
                "comparison": models, "items": items}
