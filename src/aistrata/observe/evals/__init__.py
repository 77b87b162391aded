"""Evaluation: scores (people and evaluators), built-in and model-judged evaluators, online
rules run after requests complete, datasets and runs that compare models."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from ...gateway.pipeline import Gateway
from ...store.db import Database
from .datasets import DatasetStore, Runs
from .evaluators import EVALUATORS, Evaluator, Sample, Verdict, build_evaluator
from .judge import EVAL_TAG, Judge
from .online import EvalRule, EvalWorker
from .scores import Score, ScoreStore

__all__ = ["EVALUATORS", "EVAL_TAG", "DatasetStore", "EvalRule", "EvalWorker", "Evaluations", "Evaluator", "Judge",
           "Runs", "Sample", "Score", "ScoreStore", "Verdict", "build_evaluator"]


class Evaluations:
    """Everything evaluation needs, built from the config's `evaluations:` list."""

    def __init__(self, db: Database, gateway: Gateway, rules: list[Mapping[str, Any]] | None = None,
                 rng: Callable[[], float] | None = None) -> None:
        self.judge = Judge(gateway)
        self.scores = ScoreStore(db)
        self.datasets = DatasetStore(db)
        self.runs = Runs(db, self.datasets, gateway, self.judge)
        parsed = [EvalRule.from_config(spec, self.judge) for spec in rules or ()]
        self.worker = EvalWorker(parsed, self.scores, rng=rng or random.random)
