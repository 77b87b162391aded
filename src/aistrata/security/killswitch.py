"""Human override: kill switches and the read-only mode, alike on every replica.

The switches live in the shared state (Redis when configured) as one JSON document, and each
replica keeps a local copy refreshed every `REFRESH_S` by a background task, so the request
path reads a dict and never waits on Redis. A change made here is applied to the local copy
at once; other replicas see it at their next refresh (well within a second). While Redis is
unreachable the last known switches stay in force rather than silently lifting.

A switch is `scope:value` (`gateway` has no value): gateway, model (a requested model or the
model group it resolves to), deployment (a deployment id), provider, key (id or alias), team,
workflow (the request's `metadata.workflow`). A refused request gets 503 `upstream_unavailable`
naming the switch: the service is stopped on purpose and will come back, which is what 503
means to clients; it is not the caller's fault (403) and the body says it is deliberate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from ..core import ErrorKind, GatewayError, now_ms
from ..gateway.context import RequestContext
from ..gateway.router import Router
from ..gateway.routing import BreakerStore, BreakerView, Verdict

log = logging.getLogger("aistrata.security")

STATE_KEY = "security:overrides"
REFRESH_S = 0.2
SCOPES = ("gateway", "model", "deployment", "provider", "key", "team", "workflow")


def switch_id(scope: str, value: str | None) -> str:
    if scope not in SCOPES:
        raise GatewayError(ErrorKind.bad_request, f"'scope' must be one of {', '.join(SCOPES)}", param="scope")
    if scope == "gateway":
        return "gateway"
    if not value:
        raise GatewayError(ErrorKind.bad_request, f"a '{scope}' switch needs a 'value'", param="value")
    return f"{scope}:{value}"


def stopped(sid: str, switch: dict[str, Any]) -> GatewayError:
    reason = f": {switch['reason']}" if switch.get("reason") else ""
    return GatewayError(ErrorKind.upstream_unavailable, f"stopped by kill switch '{sid}'{reason}")


@dataclass(slots=True)
class Snapshot:
    switches: dict[str, dict[str, Any]]
    read_only: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {"switches": self.switches, "read_only": self.read_only}


class Overrides:
    """The switches and the read-only flag: shared document + local copy + refresh task."""

    def __init__(self, state: Any, refresh_s: float = REFRESH_S) -> None:
        self.state = state
        self.refresh_s = refresh_s
        self.current = Snapshot({}, None)
        self._task: asyncio.Task[None] | None = None

    @property
    def read_only(self) -> dict[str, Any] | None:
        return self.current.read_only

    async def refresh(self) -> None:
        doc = await self.state.get_json(STATE_KEY)
        if getattr(self.state, "degraded", False):
            return  # the fallback's empty state is not the truth: keep the last known switches
        doc = doc or {}
        self.current = Snapshot(dict(doc.get("switches") or {}), doc.get("read_only"))

    async def set_switch(self, scope: str, value: str | None, actor: str, reason: str | None) -> dict[str, Any]:
        sid = switch_id(scope, value)
        switch = {"id": sid, "scope": scope, "value": value, "reason": reason, "by": actor, "since": now_ms()}
        await self._change(lambda doc: doc.setdefault("switches", {}).__setitem__(sid, switch))
        return switch

    async def clear_switch(self, sid: str) -> bool:
        found = sid in self.current.switches
        await self._change(lambda doc: (doc.get("switches") or {}).pop(sid, None))
        return found

    async def set_read_only(self, enabled: bool, actor: str, reason: str | None) -> dict[str, Any] | None:
        flag = {"by": actor, "reason": reason, "since": now_ms()} if enabled else None
        await self._change(lambda doc: doc.__setitem__("read_only", flag))
        return flag

    async def _change(self, edit: Any) -> None:
        # Read-modify-write of one document: two admins changing switches in the same instant
        # on two replicas can lose one change; each change is in the audit log to re-apply.
        doc = await self.state.get_json(STATE_KEY) or {}
        edit(doc)
        await self.state.set_json(STATE_KEY, doc)
        self.current = Snapshot(dict(doc.get("switches") or {}), doc.get("read_only"))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="aistrata-overrides")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # a failed refresh keeps the last switches; the next one retries
                log.exception("refreshing kill switches failed")
            await asyncio.sleep(self.refresh_s)


class KillSwitchStage:
    """The first admission stage: refuses a request any switch matches. With no switch set
    it costs one dict check."""

    def __init__(self, overrides: Overrides, router: Router) -> None:
        self.overrides = overrides
        self.router = router

    async def admit(self, req: Any, ctx: RequestContext) -> None:
        switches = self.overrides.current.switches
        if not switches:
            return None
        sid = self.match(switches, req.model, ctx)
        if sid is not None:
            ctx.route["kill_switch"] = sid
            raise stopped(sid, switches[sid])
        return None

    def match(self, switches: dict[str, dict[str, Any]], model: str, ctx: RequestContext) -> str | None:
        p = ctx.principal
        deployments = self.router.resolve(model)
        candidates = [
            "gateway", f"model:{model}", *(f"model:{g}" for g in {d.group for d in deployments}),
            f"key:{p.key_id}", f"key:{p.key_alias}", f"team:{p.team_id}", f"workflow:{ctx.metadata.get('workflow')}",
        ]
        for sid in candidates:
            if sid in switches:
                return sid
        # Deployment and provider switches: refuse only when nothing of the group is left;
        # otherwise `SwitchedBreakers` keeps the dispatcher off the stopped deployments.
        hits = [killed_by(switches, d.id, d.provider) for d in deployments]
        return hits[0] if hits and all(hits) else None


def killed_by(switches: dict[str, dict[str, Any]], deployment_id: str, provider: str | None) -> str | None:
    for sid in (f"deployment:{deployment_id}", f"provider:{provider}"):
        if sid in switches:
            return sid
    return None


class SwitchedBreakers:
    """A `BreakerStore` that refuses deployments stopped by a deployment or provider switch,
    so the dispatcher routes around them (to other deployments and fallbacks) as it does
    around an open circuit."""

    def __init__(self, inner: BreakerStore, overrides: Overrides, providers: dict[str, str]) -> None:
        self.inner = inner
        self.overrides = overrides
        self.providers = providers  # deployment id -> provider

    async def admit(self, dep_id: str, now: float) -> Verdict:
        switches = self.overrides.current.switches
        if switches and killed_by(switches, dep_id, self.providers.get(dep_id)):
            return Verdict.refuse
        return await self.inner.admit(dep_id, now)

    async def succeeded(self, dep_id: str, now: float, probe: bool) -> None:
        await self.inner.succeeded(dep_id, now, probe)

    async def failed(self, dep_id: str, now: float, probe: bool) -> None:
        await self.inner.failed(dep_id, now, probe)

    async def abandoned(self, dep_id: str, probe: bool) -> None:
        await self.inner.abandoned(dep_id, probe)

    async def reset(self, dep_id: str) -> None:
        await self.inner.reset(dep_id)

    async def view(self, dep_id: str, now: float) -> BreakerView:
        return await self.inner.view(dep_id, now)
