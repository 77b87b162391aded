"""The alert engine: measure each rule over its window, step its state machine, notify on
changes only.

    ok ──condition true──► pending ──true for `for_s`──► firing ──condition false──► ok
     ▲                        │                         (notify "firing")         (notify "resolved")
     └────condition false─────┘ (silent)

No data (no requests, too few scores) counts as the condition being false. Budget soft-limit
events arrive from the budget stage through `notify_budget_event` and are kept in memory
for the longest window a rule asks for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ...store.request_log import RequestFilters
from ..evals.scores import ScoreStore
from ..stats import RequestStats
from .notify import Notifier, deliveries_for
from .rules import AlertRule, AlertStore, State

log = logging.getLogger(__name__)
MAX_BUDGET_EVENTS = 10_000


def step(state: State, pending_since: int | None, breached: bool, now: int, for_ms: int,
         ) -> tuple[State, int | None, str | None]:
    """(new state, pending since, event to notify or None)."""
    if not breached:
        return "ok", None, "resolved" if state == "firing" else None
    if state == "firing":
        return "firing", pending_since, None
    since = pending_since if state == "pending" and pending_since is not None else now
    if now - since >= for_ms:
        return "firing", since, "firing"
    return "pending", since, None


class AlertEngine:
    def __init__(self, store: AlertStore, stats: RequestStats, scores: ScoreStore, notifier: Notifier, *,
                 interval_s: float = 15.0, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.stats = stats
        self.scores = scores
        self.notifier = notifier
        self.interval_s = interval_s
        self.clock = clock
        self._budget_events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=MAX_BUDGET_EVENTS)
        self._task: asyncio.Task[None] | None = None

    def notify_budget_event(self, scope: str, scope_id: str, spent_usd: float, budget_usd: float,
                            **details: Any) -> None:
        """A budget crossed its soft limit (called by the budget stage; O(1), any thread)."""
        self._budget_events.append((self._now(), {"scope": scope, "scope_id": scope_id, "spent_usd": spent_usd,
                                                  "budget_usd": budget_usd, **details}))

    def _now(self) -> int:
        return int(self.clock() * 1000)

    def measure(self, rule: AlertRule, now: int) -> tuple[float | None, bool]:
        """The rule's metric over its window and whether it breaches the threshold."""
        since = now - int(rule.window_s * 1000)
        if rule.kind == "budget_soft_limit":
            hits = sum(1 for at, ev in list(self._budget_events)
                       if since <= at <= now and all(str(ev.get(k)) == v for k, v in rule.filters.items()))
            return float(hits), hits > 0
        if rule.kind == "quality":
            mean, n = self.scores.mean(str(rule.evaluator), since, now + 1)
            return mean, mean is not None and n >= rule.min_requests and mean < rule.threshold
        filters = RequestFilters(since=since, until=now + 1, **rule.filters)
        if rule.kind == "cost":
            cost = sum(row["cost_usd"] for row in self.stats.costs(filters))
            return cost, cost > rule.threshold
        row = self.stats.summary(filters)[0]
        value = row["error_rate"] if rule.kind == "error_rate" else row["p95_latency_ms"]
        enough = row["requests"] >= rule.min_requests
        return value, enough and value is not None and value > rule.threshold

    async def tick(self) -> None:
        """Evaluate every rule once; state changes are stored with their deliveries, then sent."""
        now = self._now()
        for rule in await asyncio.to_thread(self.store.list):
            try:
                value, breached = await asyncio.to_thread(self.measure, rule, now)
            except Exception:  # noqa: BLE001 - one broken rule must not stop the others
                log.exception("alert rule %s could not be evaluated", rule.id)
                continue
            state, pending_since, event = step(rule.state, rule.pending_since, breached, now, int(rule.for_s * 1000))
            changed = state != rule.state
            rule.last_value, rule.pending_since = value, pending_since
            if changed:
                rule.state, rule.state_since = state, now
            deliveries = deliveries_for(rule, event) if event else []
            await asyncio.to_thread(self.store.save_state, rule, deliveries)
            self.notifier.send(deliveries)

    def start(self) -> None:
        """Resend deliveries a previous process left pending, then evaluate every interval."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="aistrata-alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        self.notifier.send(await asyncio.to_thread(self.store.deliveries, None, "pending"))
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - the database may be away for a while
                log.exception("alert evaluation failed")
            await asyncio.sleep(self.interval_s)
