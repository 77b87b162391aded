"""Scores: one judgement of one request, trace or span, from a person (API), an evaluator
(EVAL) or an annotator (HUMAN). Maps to OTel's `gen_ai.evaluation.result` event.

NUMERIC scores carry `value`; BOOLEAN ones carry `value` 1.0/0.0; CATEGORICAL ones carry
`label` (and may carry a `value`). A model-judged score names the judge's own request in
`judge_request_id`, so its cost is one join away.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ...core import bad_request, new_id, now_ms
from ...store.db import Database

DataType = Literal["NUMERIC", "BOOLEAN", "CATEGORICAL"]
DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL")
SOURCES = ("API", "EVAL", "HUMAN")
TARGETS = ("request_id", "trace_id", "span_id")
COLUMNS = ("id", "target_type", "target_id", "name", "data_type", "value", "label", "comment", "source",
           "evaluator", "judge_request_id", "created_at")
MAX_LIMIT = 1000


@dataclass(slots=True)
class Score:
    target_type: str  # request | trace | span
    target_id: str
    name: str
    data_type: DataType = "NUMERIC"
    value: float | None = None
    label: str | None = None
    comment: str | None = None
    source: str = "API"
    evaluator: str | None = None
    judge_request_id: str | None = None
    id: str = field(default_factory=lambda: new_id("score_"))
    created_at: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_body(cls, body: dict[str, Any], source: str = "API") -> Score:
        """A score posted to the API; raises a 400 `GatewayError` naming what is wrong."""
        targets = [t for t in TARGETS if body.get(t)]
        if len(targets) != 1:
            raise bad_request(f"give exactly one target: {', '.join(TARGETS)}")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request("'name' is required", "name")
        data_type = str(body.get("data_type") or ("CATEGORICAL" if "label" in body and "value" not in body
                                                   else "NUMERIC")).upper()
        if data_type not in DATA_TYPES:
            raise bad_request(f"'data_type' must be one of {', '.join(DATA_TYPES)}", "data_type")
        value = body.get("value")
        if isinstance(value, bool):
            value = 1.0 if value else 0.0
        if value is not None and not isinstance(value, (int, float)):
            raise bad_request("'value' must be a number or a boolean", "value")
        if data_type == "BOOLEAN" and value not in (0, 1):
            raise bad_request("a BOOLEAN score's value is true/false (or 1/0)", "value")
        if data_type != "CATEGORICAL" and value is None:
            raise bad_request(f"a {data_type} score needs a 'value'", "value")
        if data_type == "CATEGORICAL" and not body.get("label"):
            raise bad_request("a CATEGORICAL score needs a 'label'", "label")
        src = str(body.get("source") or source).upper()
        if src not in SOURCES:
            raise bad_request(f"'source' must be one of {', '.join(SOURCES)}", "source")
        target = targets[0]
        return cls(target.removesuffix("_id"), str(body[target]), name, data_type,  # type: ignore[arg-type]
                   None if value is None else float(value), body.get("label"), body.get("comment"), src)


class ScoreStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, score: Score) -> Score:
        self.db.execute(
            f"INSERT INTO scores ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            tuple(getattr(score, c) for c in COLUMNS),
        )
        return score

    def query(self, *, target_id: str | None = None, name: str | None = None, source: str | None = None,
              since: int | None = None, until: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Scores newest first; every argument narrows."""
        where: list[str] = []
        params: list[Any] = []
        for column, value, op in (("target_id", target_id, "="), ("name", name, "="), ("source", source, "="),
                                  ("created_at", since, ">="), ("created_at", until, "<")):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        sql = f"SELECT {', '.join(COLUMNS)} FROM scores" + (f" WHERE {' AND '.join(where)}" if where else "")
        limit = max(1, min(limit, MAX_LIMIT))
        return self.db.fetchall(sql + " ORDER BY created_at DESC, id DESC LIMIT ?", (*params, limit))

    def mean(self, name: str, since: int, until: int) -> tuple[float | None, int]:
        """Mean value and count of the scores named `name` in [since, until)."""
        row = self.db.fetchone(
            "SELECT AVG(value) AS mean, COUNT(value) AS n FROM scores WHERE name = ? AND created_at >= ? "
            "AND created_at < ?", (name, since, until),
        )
        return (None, 0) if row is None else (row["mean"], row["n"])
