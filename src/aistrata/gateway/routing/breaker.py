"""Circuit breaker per deployment.

    closed ──(allowed_fails failures within failure_window)──▶ open
    open ──(cooldown_time elapsed; the next request claims the single probe)──▶ half_open
    half_open ──(probe succeeds)──▶ closed          (failure history cleared)
    half_open ──(probe fails)──▶ open               (a fresh cool-down, never a shorter one)
    half_open ──(probe never reports within probe_lease)──▶ the next request may probe

While open, and while a probe is out, `admit` refuses the deployment, so requests go to the
other deployments (or fallback groups). Only failures that say the deployment is unwell
count (rate limits, 5xx/unreachable, timeouts); a client's bad request never does.

State sits behind `BreakerStore` so a shared backend can hold it across replicas; each
method is one atomic step on one deployment's state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from .policy import BreakerPolicy


class Verdict(str, Enum):
    admit = "admit"
    probe = "probe"  # admitted as the one half-open probe: its outcome decides the state
    refuse = "refuse"


@dataclass(frozen=True, slots=True)
class BreakerView:
    state: str  # closed | open | half_open
    failures: int  # within the window
    retry_at: float | None  # clock time the cool-down ends (open) or the probe lease ends
    opened: int  # times it has opened


class BreakerStore(Protocol):
    """Breaker state for every deployment. `now` is the caller's monotonic clock reading."""

    async def admit(self, dep_id: str, now: float) -> Verdict: ...

    async def succeeded(self, dep_id: str, now: float, probe: bool) -> None: ...

    async def failed(self, dep_id: str, now: float, probe: bool) -> None: ...

    async def abandoned(self, dep_id: str, probe: bool) -> None: ...

    async def reset(self, dep_id: str) -> None: ...

    async def view(self, dep_id: str, now: float) -> BreakerView: ...


@dataclass(slots=True)
class _State:
    failures: deque[float]
    state: str = "closed"
    retry_at: float = 0.0
    opened: int = 0


@dataclass
class InProcessBreakers:
    """`BreakerStore` for one process: a dict of small states, no locks (one event loop)."""

    policy: BreakerPolicy
    _states: dict[str, _State] = field(default_factory=dict)

    def _get(self, dep_id: str) -> _State:
        st = self._states.get(dep_id)
        if st is None:
            st = self._states[dep_id] = _State(deque(maxlen=self.policy.allowed_fails))
        return st

    async def admit(self, dep_id: str, now: float) -> Verdict:
        st = self._states.get(dep_id)
        if st is None or st.state == "closed":
            return Verdict.admit
        if now < st.retry_at:
            return Verdict.refuse  # cooling down, or the probe is still out
        st.state, st.retry_at = "half_open", now + self.policy.probe_lease_s
        return Verdict.probe

    async def succeeded(self, dep_id: str, now: float, probe: bool) -> None:
        st = self._states.get(dep_id)
        if probe and st is not None and st.state == "half_open":
            st.state, st.retry_at = "closed", 0.0
            st.failures.clear()

    async def failed(self, dep_id: str, now: float, probe: bool) -> None:
        st = self._get(dep_id)
        if probe and st.state == "half_open":
            self._open(st, now)
            return
        if st.state != "closed":
            return  # a request admitted before the breaker opened: already accounted for
        st.failures.append(now)
        if len(st.failures) == st.failures.maxlen and now - st.failures[0] <= self.policy.window_s:
            self._open(st, now)

    def _open(self, st: _State, now: float) -> None:
        # Failures reported while open are ignored (see `failed`), so a cool-down is never
        # cut short by a later, earlier-ending one (LiteLLM #40130).
        st.state, st.retry_at = "open", now + self.policy.cooldown_s
        st.opened += 1
        st.failures.clear()

    async def abandoned(self, dep_id: str, probe: bool) -> None:
        st = self._states.get(dep_id)
        if probe and st is not None and st.state == "half_open":
            st.retry_at = 0.0  # the probe was cancelled without a verdict: let the next request probe

    async def reset(self, dep_id: str) -> None:
        self._states.pop(dep_id, None)

    async def view(self, dep_id: str, now: float) -> BreakerView:
        st = self._states.get(dep_id)
        if st is None:
            return BreakerView("closed", 0, None, 0)
        state = st.state
        if state == "open" and now >= st.retry_at:
            state = "half_open"  # the next request will probe
        recent = sum(1 for t in st.failures if now - t <= self.policy.window_s)
        return BreakerView(state, recent, st.retry_at or None, st.opened)
