"""Alerts: rules on cost, error rate, p95 latency, score quality and budget soft limits, an
ok/pending/firing state machine, and webhooks (generic, Slack, PagerDuty) with a delivery log."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from ...store.db import Database
from ..evals.scores import ScoreStore
from ..stats import RequestStats
from .engine import AlertEngine, step
from .notify import Notifier, payload
from .rules import AlertRule, AlertStore, Channel

__all__ = ["AlertEngine", "AlertRule", "AlertStore", "Alerts", "Channel", "Notifier", "payload", "step"]


class Alerts:
    """The store, notifier and engine, with the config's rules stored (state kept across restarts).

    `observe: {alert_interval_s: 15, alert_max_attempts: 5, alert_backoff_s: 1.0}` tune it."""

    def __init__(self, db: Database, session: Callable[[], aiohttp.ClientSession], rules: list[Any] | None = None,
                 options: Mapping[str, Any] | None = None, clock: Callable[[], float] | None = None) -> None:
        opts = options or {}
        self.store = AlertStore(db)
        self.notifier = Notifier(self.store, session, max_attempts=int(opts.get("alert_max_attempts", 5)),
                                 backoff_s=float(opts.get("alert_backoff_s", 1.0)))
        self.engine = AlertEngine(self.store, RequestStats(db), ScoreStore(db), self.notifier,
                                  interval_s=float(opts.get("alert_interval_s", 15)),
                                  clock=clock or time.time)
        for spec in rules or ():
            self.store.put(AlertRule.from_spec(dict(spec), source="config"))
        self.notify_budget_event = self.engine.notify_budget_event

    def start(self) -> None:
        self.engine.start()

    async def stop(self) -> None:
        await self.engine.stop()
        await self.notifier.close()
