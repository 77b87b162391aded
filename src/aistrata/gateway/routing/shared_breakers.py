"""Circuit breakers shared by every replica through Redis, with `InProcessBreakers`' semantics.

Keys per deployment (the `{dep_id}` hash tag keeps them in one Redis Cluster slot):

    <prefix>breaker:{dep}:s   hash: state (open | half_open; absent = closed), until (ms the
                              cool-down ends), opened (times it has opened)
    <prefix>breaker:{dep}:f   sorted set of failure times (ms), trimmed to the window and to
                              the newest `allowed_fails`
    <prefix>breaker:{dep}:p   the probe lease: SET NX PX, its value the ms the lease ends

Each transition (admit, failed, succeeded, abandoned) is one Lua script on these keys, so two
replicas can never both claim the probe or both open the breaker. The scripts read the clock
with Redis `TIME`: one clock for all replicas, whatever their own say. (`server_time=False`
uses the caller's `now` instead, so tests can drive the clock as they do the in-process one.)

The hot path costs no round trip: each replica keeps the last state it saw of each deployment
(from the transitions it ran itself, or a re-read) and trusts it for `refresh_s` (250 ms).
A closed breaker admits, and an open one refuses until its cool-down ends, from that copy;
only when the copy is stale, or a cool-down is over (a probe may be due), does `admit` run the
script. Another replica's transition is therefore seen within `refresh_s`. A short-TTL re-read
was chosen over pub/sub because it needs no subscriber connection per replica and cannot miss
a message across a reconnect; the price is at most `refresh_s` of requests to a deployment
another replica has just opened -- the same few that were already in flight.

While Redis is unreachable the store falls back to `InProcessBreakers`, following the shared
state's own health signal (`FallbackState`: one log line per transition, `/ready` says so).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

from ..state import FallbackState
from .breaker import BreakerView, InProcessBreakers, Verdict
from .policy import BreakerPolicy

T = TypeVar("T")

# KEYS: state hash, failure zset, probe lease. ARGV[1]: the clock in ms, or '' for Redis TIME.
# The transitions return {state, until_ms, now_ms, ...}: what `_remember` caches.
PRELUDE = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else now = tonumber(ARGV[1]) end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local function open(cooldown)
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + cooldown)
  redis.call('HINCRBY', KEYS[1], 'opened', 1)
  redis.call('DEL', KEYS[2], KEYS[3])
  return {'open', now + cooldown, now}
end
local function lease()
  local p = tonumber(redis.call('GET', KEYS[3]))
  if p and p <= now then redis.call('DEL', KEYS[3]); p = nil end  -- ran out (by the script's clock)
  return p
end
"""

# ARGV[2]: probe lease ms. Returns {state, until, now, verdict}.
ADMIT = PRELUDE + """
if state == 'closed' then return {state, 0, now, 'admit'} end
local untl = tonumber(redis.call('HGET', KEYS[1], 'until'))
if now < untl then return {state, untl, now, 'refuse'} end
local p = lease()
if p then return {'half_open', p, now, 'refuse'} end
redis.call('SET', KEYS[3], now + tonumber(ARGV[2]), 'NX', 'PX', ARGV[2])
redis.call('HSET', KEYS[1], 'state', 'half_open')
return {'half_open', now + tonumber(ARGV[2]), now, 'probe'}
"""

# ARGV[2]: probe (0/1), [3]: allowed fails, [4]: window ms, [5]: cool-down ms, [6]: a unique member.
FAILED = PRELUDE + """
if ARGV[2] == '1' and state == 'half_open' then return open(tonumber(ARGV[5])) end
if state ~= 'closed' then return {state, tonumber(redis.call('HGET', KEYS[1], 'until')), now} end
local n, window = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - window))
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(n + 1))
if redis.call('ZCARD', KEYS[2]) >= n then return open(tonumber(ARGV[5])) end
redis.call('PEXPIRE', KEYS[2], window + 1000)
return {state, 0, now}
"""

# ARGV[2]: probe (0/1).
SUCCEEDED = PRELUDE + """
if ARGV[2] == '1' and state == 'half_open' then
  redis.call('HDEL', KEYS[1], 'state', 'until')
  redis.call('DEL', KEYS[2], KEYS[3])
  return {'closed', 0, now}
end
return {state, tonumber(redis.call('HGET', KEYS[1], 'until')) or 0, now}
"""

# ARGV[2]: probe (0/1). A cancelled probe hands the slot to the next request.
ABANDONED = PRELUDE + """
if ARGV[2] == '1' and state == 'half_open' then redis.call('DEL', KEYS[3]) end
return 0
"""

# ARGV[2]: window ms. Returns {state, until, now, failures, opened}; until is the lease end
# when half-open, 0 for none.
VIEW = PRELUDE + """
local untl = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
if state == 'open' and now >= untl then state = 'half_open' end  -- the next request will probe
if state == 'half_open' and untl <= now then untl = lease() or 0 end
local failures = redis.call('ZCOUNT', KEYS[2], now - tonumber(ARGV[2]), '+inf')
return {state, untl, now, failures, tonumber(redis.call('HGET', KEYS[1], 'opened')) or 0}
"""


@dataclass(slots=True)
class _Seen:
    """The last state this replica saw of one deployment, on the caller's clock."""

    state: str
    until: float  # cool-down or probe-lease end; admits go to Redis from then on
    fresh_until: float  # monotonic time after which the copy must be re-read


class SharedBreakers:
    """`BreakerStore` in Redis (through `state`'s connection and key prefix), falling back to
    in-process breakers while `state` reports Redis unreachable."""

    def __init__(
        self, policy: BreakerPolicy, state: FallbackState, *, refresh_s: float = 0.25, server_time: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.state = state
        self.local = InProcessBreakers(policy)
        self.refresh_s = refresh_s
        self.server_time = server_time
        self.monotonic = monotonic
        self.prefix = state.primary.prefix + "breaker:"
        client = state.primary.redis
        self._admit = client.register_script(ADMIT)
        self._failed = client.register_script(FAILED)
        self._succeeded = client.register_script(SUCCEEDED)
        self._abandoned = client.register_script(ABANDONED)
        self._view = client.register_script(VIEW)
        self._seen: dict[str, _Seen] = {}
        self._ms = (int(policy.window_s * 1000), int(policy.cooldown_s * 1000), int(policy.probe_lease_s * 1000))

    # ---- plumbing ----------------------------------------------------------------------------

    def _keys(self, dep_id: str) -> list[str]:
        base = f"{self.prefix}{{{dep_id}}}:"
        return [base + "s", base + "f", base + "p"]

    def _clock(self, now: float) -> str:
        return "" if self.server_time else str(round(now * 1000))

    async def _either(self, remote: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        """`remote` unless the shared state has Redis down (then `local`): one health signal
        and one log line per transition for limits, budgets and breakers alike."""
        primary = self.state.primary
        return await self.state._run(lambda backend: remote() if backend is primary else local())

    async def _script(self, script: Any, dep_id: str, now: float, *args: Any) -> list[Any]:
        reply = await script(keys=self._keys(dep_id), args=[self._clock(now), *args])
        self._remember(dep_id, now, reply)
        return list(reply)

    def _remember(self, dep_id: str, now: float, reply: list[Any]) -> None:
        state, until_ms, now_ms = str(reply[0]), int(reply[1]), int(reply[2])
        # Redis's clock -> the caller's: the same distance from "now" on both.
        until = now + (until_ms - now_ms) / 1000 if until_ms else float("-inf")
        self._seen[dep_id] = _Seen(state, until, self.monotonic() + self.refresh_s)

    # ---- BreakerStore ------------------------------------------------------------------------

    async def admit(self, dep_id: str, now: float) -> Verdict:
        seen = self._seen.get(dep_id)
        if seen is not None and not self.state.degraded and self.monotonic() < seen.fresh_until:
            if seen.state == "closed":
                return Verdict.admit
            if now < seen.until:
                return Verdict.refuse  # cooling down, or another request holds the probe

        async def remote() -> Verdict:
            reply = await self._script(self._admit, dep_id, now, self._ms[2])
            return Verdict(str(reply[3]))

        return await self._either(remote, lambda: self.local.admit(dep_id, now))

    async def failed(self, dep_id: str, now: float, probe: bool) -> None:
        window, cooldown, _ = self._ms
        await self._either(
            lambda: self._script(self._failed, dep_id, now, int(probe), self.policy.allowed_fails, window, cooldown,
                                 uuid.uuid4().hex),
            lambda: self.local.failed(dep_id, now, probe))

    async def succeeded(self, dep_id: str, now: float, probe: bool) -> None:
        if not probe:
            return  # only a probe's success changes anything: no round trip for the rest
        await self._either(lambda: self._script(self._succeeded, dep_id, now, 1),
                           lambda: self.local.succeeded(dep_id, now, probe))

    async def abandoned(self, dep_id: str, probe: bool) -> None:
        if not probe:
            return
        self._seen.pop(dep_id, None)  # the next admit asks Redis: it may be the next probe

        async def remote() -> None:
            await self._abandoned(keys=self._keys(dep_id), args=["", 1])  # the clock plays no part

        await self._either(remote, lambda: self.local.abandoned(dep_id, probe))

    async def reset(self, dep_id: str) -> None:
        self._seen.pop(dep_id, None)

        async def remote() -> None:
            await self.state.primary.redis.delete(*self._keys(dep_id))

        await self._either(remote, lambda: self.local.reset(dep_id))

    async def view(self, dep_id: str, now: float) -> BreakerView:
        async def remote() -> BreakerView:
            state, until_ms, now_ms, failures, opened = await self._view(
                keys=self._keys(dep_id), args=[self._clock(now), self._ms[0]])
            retry_at = now + (int(until_ms) - int(now_ms)) / 1000 if int(until_ms) else None
            return BreakerView(str(state), int(failures), retry_at, int(opened))

        return await self._either(remote, lambda: self.local.view(dep_id, now))
