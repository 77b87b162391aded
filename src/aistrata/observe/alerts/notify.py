"""Webhook payloads (generic JSON, Slack-compatible, PagerDuty Events v2) and their delivery
with retries and exponential backoff; every attempt is appended to the delivery's log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ...core import new_id, now_ms
from .rules import AlertRule, AlertStore, Channel

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
UNITS = {"cost": " USD", "error_rate": "", "latency_p95": " ms", "quality": "", "budget_soft_limit": " event(s)"}


def summary(rule: AlertRule, event: str) -> str:
    value = "no data" if rule.last_value is None else f"{rule.last_value:g}{UNITS[rule.kind]}"
    cmp = "<" if rule.kind == "quality" else ">"
    return f"[{event.upper()}] {rule.name}: {rule.kind} = {value} (fires when {cmp} {rule.threshold:g}, window {rule.window_s:g}s)"


def payload(rule: AlertRule, event: str, channel: Channel, at_ms: int) -> dict[str, Any]:
    """The body for one channel; `event` is `firing` or `resolved`."""
    if channel.format == "slack":
        return {"text": summary(rule, event)}
    if channel.format == "pagerduty":
        body: dict[str, Any] = {"routing_key": channel.routing_key, "dedup_key": rule.id,
                                "event_action": "trigger" if event == "firing" else "resolve"}
        if event == "firing":
            body["payload"] = {"summary": summary(rule, event), "source": "aistrata", "severity": "error",
                               "custom_details": {"rule": rule.name, "type": rule.kind, "value": rule.last_value,
                                                 "threshold": rule.threshold, "window_s": rule.window_s}}
        return body
    return {"event": event, "rule": {"id": rule.id, "name": rule.name, "type": rule.kind,
                                     "threshold": rule.threshold, "window_s": rule.window_s,
                                     "filters": rule.filters},
            "state": rule.state, "value": rule.last_value, "at": at_ms, "summary": summary(rule, event)}


def deliveries_for(rule: AlertRule, event: str) -> list[dict[str, Any]]:
    at = now_ms()
    return [{"id": new_id("dlv_"), "rule_id": rule.id, "event": event, "url": ch.url, "format": ch.format,
             "payload": payload(rule, event, ch, at), "status": "pending", "attempts": 0, "attempt_log": [],
             "created_at": at, "updated_at": at} for ch in rule.channels]


class Notifier:
    def __init__(self, store: AlertStore, session: Callable[[], aiohttp.ClientSession], *, max_attempts: int = 5,
                 backoff_s: float = 1.0, max_backoff_s: float = 60.0, timeout_s: float = 10.0,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.store = store
        self.session = session
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.sleep = sleep
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, deliveries: list[dict[str, Any]]) -> None:
        """Deliver in the background: a slow webhook must not hold up rule evaluation."""
        for d in deliveries:
            task = asyncio.create_task(self.deliver(d))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("alert delivery crashed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for the deliveries in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop sending; unfinished deliveries stay `pending` and are resent on the next start."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def deliver(self, d: dict[str, Any]) -> None:
        delay = self.backoff_s
        while d["attempts"] < self.max_attempts:
            d["attempts"] += 1
            entry: dict[str, Any] = {"at": now_ms()}
            try:
                async with self.session().post(d["url"], json=d["payload"], timeout=self.timeout) as resp:
                    entry["status"] = resp.status
                    ok = 200 <= resp.status < 300
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
                ok = False
            d["attempt_log"].append(entry)
            d["status"] = "delivered" if ok else ("failed" if d["attempts"] >= self.max_attempts else "pending")
            await asyncio.to_thread(self.store.update_delivery, d)
            if ok:
                return
            if d["status"] == "pending":
                await self.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
        log.warning("alert delivery %s to %s failed after %d attempts", d["id"], d["url"], d["attempts"])
