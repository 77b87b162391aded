"""Running policies: scan texts with their checks (cheap ones inline, heavy ones in worker
threads, all at once), decide block / mask / flag, and record every decision.

Decisions land on the request as `ctx.route["guards"]` (a list of {policy, check, action,
where, count}), so they are in the request log, and in the process counters (`stats()`).
A block raises `GatewayError(content_policy)` whose message names the policy and the check,
never the text that matched.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..core import ErrorKind, GatewayError
from . import counters
from .findings import Env, Finding, mask
from .policy import Policy, Rule


@dataclass(slots=True)
class Segment:
    """One scanned text (a message part, an embedding input, an answer) and how to rewrite it."""

    text: str
    write: Callable[[str], None]


@dataclass(slots=True)
class Hit:
    policy: Policy
    rule: Rule
    findings: list[tuple[int, Finding]]  # (segment index, finding)


def timed_scan(rule: Rule, texts: Sequence[str], env: Env) -> list[tuple[int, Finding]]:
    start = time.perf_counter()
    try:
        return [(i, f) for i, text in enumerate(texts) if text for f in rule.check.scan(text, env)]
    finally:
        counters.count_run(rule.name, time.perf_counter() - start)


async def scan(policies: Sequence[Policy], texts_for: Callable[[Policy], list[int]], segments: Sequence[Segment],
               env: Env, request: Any = None) -> list[Hit]:
    """Every rule of every policy over its segments; heavy checks run in parallel threads."""
    texts = [s.text for s in segments]
    pending: list[tuple[Policy, Rule, Any]] = []
    hits: list[Hit] = []
    for policy in policies:
        chosen = set(texts_for(policy))
        view = [texts[i] if i in chosen else "" for i in range(len(texts))]
        for rule in policy.rules:
            if rule.request_level:
                found = [(-1, f) for f in rule.check.inspect(request)] if request is not None else []
                hits.append(Hit(policy, rule, found))
            elif getattr(rule.check, "heavy", False):
                pending.append((policy, rule, asyncio.to_thread(timed_scan, rule, view, env)))
            else:
                hits.append(Hit(policy, rule, timed_scan(rule, view, env)))
    results = await asyncio.gather(*(coro for _, _, coro in pending))
    hits += [Hit(p, r, found) for (p, r, _), found in zip(pending, results, strict=True)]
    return [h for h in hits if h.findings]


class Decisions:
    """Records decisions on one request: merged per (policy, check, action, where)."""

    def __init__(self, ctx: Any) -> None:
        self.rows: list[dict[str, Any]] = ctx.route.setdefault("guards", [])

    def add(self, policy: str, check: str, action: str, where: str, count: int) -> None:
        for row in self.rows:
            if (row["policy"], row["check"], row["action"], row["where"]) == (policy, check, action, where):
                row["count"] += count
                return
        self.rows.append({"policy": policy, "check": check, "action": action, "where": where, "count": count})
        counters.count_decision(policy, check, action, where)


def blocked(policy: str, check: str, where: str) -> GatewayError:
    side = "answer" if where == "output" else "request"
    return GatewayError(ErrorKind.content_policy, f"{side} blocked by policy '{policy}' (check: {check})")


def apply(hits: Sequence[Hit], segments: Sequence[Segment], decisions: Decisions, where: str) -> None:
    """Record every hit, then block on the first blocking one, else mask the segments."""
    for hit in hits:
        decisions.add(hit.policy.name, hit.rule.name, hit.rule.action, where, len(hit.findings))
    for hit in hits:
        if hit.rule.action == "block":
            raise blocked(hit.policy.name, hit.rule.name, where)
    masks: dict[int, list[Finding]] = {}
    for hit in hits:
        if hit.rule.action == "mask":
            for i, f in hit.findings:
                masks.setdefault(i, []).append(f)
    for i, found in masks.items():
        segments[i].write(mask(segments[i].text, found))
