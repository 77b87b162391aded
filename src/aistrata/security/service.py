"""Security as the app holds it: settings, the audit log and its decision writer, the kill
switches, payload protection, JWT verification, and the retention of audit rows and payloads.

    security:
      max_body_bytes: 33554432     # request bodies, data plane and management (413 above)
      access_log: false            # true: one line per request on the `aistrata.access` logger
      mask_payloads: false         # mask PII and secrets in stored prompts and completions
    audit: {retention_days: 730}   # never below 365
    observe: {retention: {payloads: 30}}   # drop prompts/completions from spans (gateway spans too) after 30 days
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..core import now_ms
from ..gateway.context import RequestContext
from ..gateway.router import Router
from ..observe.recorder import Recorder
from ..observe.traces.retention import rows_before
from ..store.db import Database
from .audit import AuditEvent, AuditLog
from .crypto import PayloadProtection
from .jwt import JwtVerifier
from .killswitch import KillSwitchStage, Overrides, SwitchedBreakers
from .residency import ResidencyStage, parse_residency

log = logging.getLogger("aistrata.security")
DEFAULT_MAX_BODY = 32 << 20
DAY_MS = 86_400_000


@dataclass(slots=True, frozen=True)
class SecuritySettings:
    max_body_bytes: int = DEFAULT_MAX_BODY
    access_log: bool = False  # off by default: a log line costs more than the gateway's own work
    audit_days: float | None = None
    payload_days: float | None = None
    interval_s: float = 3600.0

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> SecuritySettings:
        section = raw.get("security") or {}
        audit = raw.get("audit") or {}
        observe = raw.get("observe") or {}
        payloads = (observe.get("retention") or {}).get("payloads")
        return cls(
            max_body_bytes=int(section.get("max_body_bytes") or DEFAULT_MAX_BODY),
            access_log=bool(section.get("access_log", False)),
            audit_days=None if audit.get("retention_days") is None else float(audit["retention_days"]),
            payload_days=None if payloads is None else float(payloads),
            interval_s=float(observe.get("retention_interval_s") or 3600),
        )


class DecisionAuditor:
    """A request observer (`request_recording.RecordObserver`): policy refusals (kill switches,
    residency, guard blocks) become audit rows, queued to a writer thread off the request path."""

    def __init__(self, writer: Recorder) -> None:
        self.writer = writer

    def observe(self, rec: Any, ctx: RequestContext) -> None:
        route = ctx.route
        if not route:
            return
        p = ctx.principal
        base = {"actor": p.actor, "role": p.role, "target": ctx.requested_model or None, "result": "refused"}
        if "kill_switch" in route:
            self._add(base, "policy.kill_switch", {"switch": route["kill_switch"], "request_id": ctx.id})
        if "residency" in route:
            self._add(base, "policy.residency", {**route["residency"], "request_id": ctx.id})
        for g in route.get("guards") or ():
            if g.get("action") == "block":
                self._add(base, "policy.guard", {**g, "request_id": ctx.id})

    def _add(self, base: dict[str, Any], action: str, details: dict[str, Any]) -> None:
        self.writer.record(AuditEvent(action=action, details=details, **base))  # type: ignore[arg-type]


class Security:
    def __init__(self, settings: SecuritySettings, raw: Mapping[str, Any], env: Mapping[str, str], db: Database,
                 state: Any, data_dir: Path) -> None:
        self.settings = settings
        self.raw = raw
        self.db = db
        self.audit = AuditLog(db)
        self.overrides = Overrides(state)
        self.protection = PayloadProtection.from_settings(raw, env)
        self.jwt = JwtVerifier.from_config(raw, env)
        self.residency = parse_residency(raw)
        self.decisions = Recorder(self.audit, spool_dir=Path(data_dir) / "spool" / "audit",  # type: ignore[arg-type]
                                  decode=AuditEvent.from_dict, name="audit log")
        self.auditor = DecisionAuditor(self.decisions)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Any, db: Database, state: Any) -> Security:
        return cls(SecuritySettings.from_config(settings.raw), settings.raw, settings.env, db, state,
                   Path(settings.data_dir))

    def admissions(self, router: Router, dispatcher: Any) -> list[Any]:
        """The stages that run before all others: kill switches first, then residency. Also
        puts the kill switches in front of the dispatcher's circuit breakers."""
        breakers = getattr(dispatcher, "breakers", None)
        if breakers is not None:
            providers = {d.id: d.provider for deps in router.settings.groups.values() for d in deps}
            dispatcher.breakers = SwitchedBreakers(breakers, self.overrides, providers)
        stages: list[Any] = [KillSwitchStage(self.overrides, router)]
        teams, default = self.residency
        if teams or default is not None:
            stages.append(ResidencyStage(teams, default, router, dispatcher))
        return stages

    def record(self, event: AuditEvent) -> None:
        """Audit an event without waiting (the writer thread chains it)."""
        self.decisions.record(event)  # type: ignore[arg-type]

    async def start(self) -> None:
        await self.overrides.refresh()  # switches in force before the first request
        self.overrides.start()
        self.decisions.start()
        if self.settings.audit_days is not None or self.settings.payload_days is not None:
            self._task = asyncio.get_running_loop().create_task(self._retention(), name="aistrata-audit-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.overrides.stop()
        self.decisions.stop()

    async def _retention(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.run_retention)
            except Exception:  # retried next round; the loop must survive a failed one
                log.exception("audit and payload retention failed")
            await asyncio.sleep(self.settings.interval_s)

    def run_retention(self, now: int | None = None) -> dict[str, int]:
        now = now_ms() if now is None else now
        done: dict[str, int] = {}
        if self.settings.audit_days is not None:
            done["audit"] = self.audit.prune(self.settings.audit_days, now)
        if self.settings.payload_days is not None:
            done["payloads"] = drop_payloads(self.db, int((now - self.settings.payload_days * DAY_MS) * 1000))
        return done


def drop_payloads(db: Database, before_us: int, batch: int = 5000) -> int:
    """Blank the prompts and completions of spans started before `before_us` (applications'
    spans, and gateway spans on their request rows), in batches; the rows themselves (timings,
    tokens, costs) stay for their own retention."""
    total = 0
    for table, time_column, before in (("spans", "start_us", before_us), ("requests", "ts", -(-before_us // 1000))):
        match = rows_before(db, table, time_column, "(input IS NOT NULL OR output IS NOT NULL)")
        while True:
            n = db.execute(f"UPDATE {table} SET input = NULL, output = NULL WHERE {match}", (before, batch))
            total += n
            if n < batch:
                break
    return total
