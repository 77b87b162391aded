"""State in Redis, shared by every replica. Each check-and-increment is one Lua script, which
Redis runs without interleaving any other command: that is the whole of the atomicity.

The clock is the caller's (passed to the scripts), so tests can inject it on both backends;
replicas are assumed NTP-synchronised, and skew only shifts windows by the skew.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any, Callable

import orjson
import redis.asyncio as aioredis

from .base import (
    DEFAULT_PREFIX, SUBWINDOWS, Admitted, BucketResult, ReserveResult, SlotResult, WindowResult, sub_window_ms, ttl_ms,
)

# A sliding window is a hash sub-window -> amount. `window_check` drops the sub-windows that slid
# out and says whether `amount` fits: used, allowed (1/0), retry_ms (-1: never fits).
_WINDOW = """
local function window_check(key, amount, limit, cur, n, step, now)
  local vals = redis.call('HGETALL', key)
  local used, live = 0, {}
  for i = 1, #vals, 2 do
    local s, v = tonumber(vals[i]), tonumber(vals[i + 1])
    if s < cur - n then redis.call('HDEL', key, vals[i]) else used = used + v; live[#live + 1] = {s, v} end
  end
  if used + amount <= limit then return used, 1, 0 end
  local retry = -1
  if amount <= limit then
    table.sort(live, function(a, b) return a[1] < b[1] end)
    local excess = used + amount - limit
    for _, sv in ipairs(live) do
      excess = excess - sv[2]
      if excess <= 0 then retry = (sv[1] + n + 1) * step - now; break end
    end
  end
  return used, 0, retry
end

local function window_add(key, amount, cur, n, step)
  redis.call('HINCRBY', key, cur, amount)
  redis.call('PEXPIRE', key, step * (n + 2))
end

-- A sub-window that slid out is left alone.
local function window_adjust(key, slot, delta, oldest)
  if slot >= oldest and redis.call('EXISTS', key) == 1 then redis.call('HINCRBY', key, slot, delta) end
end
"""

# A reservation counter is a hash {used: n, r:<rid>: "<amount>:<expires_ms>"}. Amounts stay the
# caller's strings: Lua would write a large number as 1e+15.
_HOLD = """
local function hold_room(key, amount, cap, now)
  local vals = redis.call('HGETALL', key)
  local used, reserved = 0, 0
  for i = 1, #vals, 2 do
    if vals[i] == 'used' then used = tonumber(vals[i + 1])
    else
      local amt, exp = string.match(vals[i + 1], '^(%-?%d+):(%d+)$')
      if tonumber(exp) <= now then redis.call('HDEL', key, vals[i]) else reserved = reserved + tonumber(amt) end
    end
  end
  return used, reserved, used + reserved + amount <= cap
end

local function hold(key, rid, amount, expires, ttl)
  redis.call('HSET', key, 'r:' .. rid, amount .. ':' .. expires)
  if ttl ~= '0' then redis.call('PEXPIRE', key, ttl) end
end

local function settle(key, rid, actual, ttl)
  redis.call('HDEL', key, 'r:' .. rid)
  local used = redis.call('HINCRBY', key, 'used', actual)
  if ttl ~= '0' then redis.call('PEXPIRE', key, ttl) end
  return used
end
"""

# KEYS[1] hash {l: level, ts: ms}. ARGV: amount, capacity, per_ms, now_ms, force.
BUCKET_TAKE = """
local amount, cap, rate, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'l', 'ts')
local level = tonumber(h[1]) or cap
local ts = tonumber(h[2]) or now
level = math.min(cap, level + math.max(0, now - ts) * rate)
local allowed, retry = 0, 0
if ARGV[5] == '1' or level >= amount then
  level = math.min(cap, level - amount); allowed = 1
elseif amount > cap then retry = -1
else retry = math.ceil((amount - level) / rate) end
redis.call('HSET', KEYS[1], 'l', tostring(level), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(0, cap - level) / rate) + 1000)
return {allowed, tostring(level), retry}
"""

# KEYS[1] zset token -> expiry ms. ARGV: limit, now_ms, ttl_ms, token.
SLOT_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local used = redis.call('ZCARD', KEYS[1])
if used >= tonumber(ARGV[1]) then return {0, used} end
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, used + 1}
"""

# KEYS[1] reservation counter. ARGV: rid, amount, cap, now_ms, hold_ms, ttl_ms.
RESERVE = _HOLD + """
local used, reserved, room = hold_room(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
if not room then return {0, used, reserved} end
hold(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[4]) + tonumber(ARGV[5]), ARGV[6])
return {1, used, reserved + tonumber(ARGV[2])}
"""

# ARGV: rid, actual, ttl_ms.
SETTLE = _HOLD + """
return settle(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
"""

# A request's admission: KEYS = nw windows, then the reservation counters. ARGV: now_ms, step_ms,
# subwindows, nw, amount_i and limit_i per window, rid, amount, hold_ms, then cap_j and ttl_ms_j
# per counter. All or nothing. Returns cur, the refused counter's index (-1: none), its used
# and reserved, then allowed_i, used_i, retry_ms_i per window.
ADMIT = _WINDOW + _HOLD + """
local now, step, n, nw = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cur = math.floor(now / step)
local out, all = {cur, -1, 0, 0}, 1
for k = 1, nw do
  local used, allowed, retry = window_check(KEYS[k], tonumber(ARGV[3 + 2 * k]), tonumber(ARGV[4 + 2 * k]), cur, n,
                                            step, now)
  if allowed == 0 then all = 0 end
  out[#out + 1] = allowed; out[#out + 1] = used; out[#out + 1] = retry
end
if all == 0 then return out end
local base = 4 + 2 * nw
local rid, amount, expires = ARGV[base + 1], ARGV[base + 2], now + tonumber(ARGV[base + 3])
for j = 1, #KEYS - nw do
  local used, reserved, room = hold_room(KEYS[nw + j], tonumber(amount), tonumber(ARGV[base + 2 + 2 * j]), now)
  if not room then out[2], out[3], out[4] = j - 1, used, reserved; return out end
end
for k = 1, nw do
  local a = tonumber(ARGV[3 + 2 * k])
  window_add(KEYS[k], a, cur, n, step)
  out[3 * k + 3] = out[3 * k + 3] + a
end
for j = 1, #KEYS - nw do hold(KEYS[nw + j], rid, amount, expires, ARGV[base + 3 + 2 * j]) end
return out
"""

# A request's settlement: KEYS = na windows, then the reservation counters. ARGV: now_ms, step_ms,
# subwindows, na, slot_i and delta_i per window, rid, actual, then ttl_ms_j per counter.
# Returns each counter's used.
RELEASE = _WINDOW + _HOLD + """
local now, step, n, na = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local oldest = math.floor(now / step) - n
for k = 1, na do window_adjust(KEYS[k], tonumber(ARGV[3 + 2 * k]), ARGV[4 + 2 * k], oldest) end
local base = 4 + 2 * na
local out = {}
for j = 1, #KEYS - na do out[j] = settle(KEYS[na + j], ARGV[base + 1], ARGV[base + 2], ARGV[base + 2 + j]) end
return out
"""

# ARGV: amount, ttl_ms.
INCR = """
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
"""


class RedisState:
    def __init__(
        self, url: str, prefix: str = DEFAULT_PREFIX, clock: Callable[[], float] = time.time,
        timeout_s: float = 1.0,
    ) -> None:
        self.prefix = prefix
        self.clock = clock
        # Short timeouts: an unreachable Redis must fail fast so the fallback can take over.
        self.redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True,
        )
        self._bucket_take = self.redis.register_script(BUCKET_TAKE)
        self._slot_acquire = self.redis.register_script(SLOT_ACQUIRE)
        self._reserve = self.redis.register_script(RESERVE)
        self._settle = self.redis.register_script(SETTLE)
        self._admit = self.redis.register_script(ADMIT)
        self._release = self.redis.register_script(RELEASE)
        self._incr = self.redis.register_script(INCR)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _now(self) -> int:
        return int(self.clock() * 1000)

    async def window_used(self, key: str, window_s: float) -> int:
        oldest = self._now() // sub_window_ms(window_s) - SUBWINDOWS
        slots = await self.redis.hgetall(self._k(key))
        return sum(int(v) for s, v in slots.items() if int(s) >= oldest)

    async def bucket_take(
        self, key: str, amount: int, capacity: int, per_s: float, force: bool = False
    ) -> BucketResult:
        allowed, level, retry = await self._bucket_take(
            keys=[self._k(key)], args=[amount, capacity, repr(per_s / 1000), self._now(), int(force)])
        return BucketResult(bool(allowed), float(level), -1.0 if retry < 0 else retry / 1000)

    async def bucket_level(self, key: str, capacity: int, per_s: float) -> float:
        level, ts = await self.redis.hmget(self._k(key), ["l", "ts"])
        if level is None:
            return float(capacity)
        return min(float(capacity), float(level) + max(0.0, self._now() - float(ts)) * per_s / 1000)

    async def slot_acquire(self, key: str, limit: int, ttl_s: float) -> SlotResult:
        token = uuid.uuid4().hex
        allowed, used = await self._slot_acquire(
            keys=[self._k(key)], args=[limit, self._now(), ttl_ms(ttl_s), token])
        return SlotResult(bool(allowed), int(used), token)

    async def slot_release(self, key: str, token: str) -> None:
        await self.redis.zrem(self._k(key), token)

    async def slots_used(self, key: str) -> int:
        return int(await self.redis.zcount(self._k(key), f"({self._now()}", "+inf"))

    async def reserve(
        self, key: str, rid: str, amount: int, cap: int, hold_s: float, ttl_s: float | None = None
    ) -> ReserveResult:
        allowed, used, reserved = await self._reserve(
            keys=[self._k(key)], args=[rid, amount, cap, self._now(), ttl_ms(hold_s), ttl_ms(ttl_s)])
        return ReserveResult(bool(allowed), int(used), int(reserved))

    async def settle(self, key: str, rid: str, actual: int, ttl_s: float | None = None) -> int:
        return int(await self._settle(keys=[self._k(key)], args=[rid, actual, ttl_ms(ttl_s)]))

    async def admit(self, windows: Sequence[tuple[str, int, int]], window_s: float,
                    holds: Sequence[tuple[str, int, float | None]], rid: str, amount: int, hold_s: float) -> Admitted:
        args: list[Any] = [self._now(), sub_window_ms(window_s), SUBWINDOWS, len(windows)]
        for _, n, limit in windows:
            args += (n, limit)
        args += (rid, amount, ttl_ms(hold_s))
        for _, cap, ttl_s in holds:
            args += (cap, ttl_ms(ttl_s))
        out = await self._admit(keys=[self._k(key) for key, _, _ in windows] + [self._k(key) for key, _, _ in holds],
                                args=args)
        cur = int(out[0])
        results = [WindowResult(bool(out[i]), int(out[i + 1]), -1.0 if out[i + 2] < 0 else out[i + 2] / 1000, cur)
                   for i in range(4, len(out), 3)]
        return Admitted(results, int(out[1]), int(out[2]), int(out[3]))

    async def release(self, adjust: Sequence[tuple[str, int, int]], window_s: float,
                      holds: Sequence[tuple[str, float | None]], rid: str, actual: int) -> list[int]:
        args: list[Any] = [self._now(), sub_window_ms(window_s), SUBWINDOWS, len(adjust)]
        for _, slot, delta in adjust:
            args += (slot, delta)
        args += (rid, actual, *(ttl_ms(ttl_s) for _, ttl_s in holds))
        out = await self._release(keys=[self._k(key) for key, _, _ in adjust] + [self._k(key) for key, _ in holds],
                                  args=args)
        return [int(v) for v in out]

    async def reservation(self, key: str) -> tuple[int, int]:
        fields = await self.redis.hgetall(self._k(key))
        now = self._now()
        reserved = 0
        for name, value in fields.items():
            if name != "used":
                amount, _, expires = value.partition(":")
                reserved += int(amount) if int(expires) > now else 0
        return int(fields.get("used", 0)), reserved

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        return int(await self._incr(keys=[self._k(key)], args=[amount, ttl_ms(ttl_s)]))

    async def get(self, key: str) -> int:
        value = await self.redis.get(self._k(key))
        return int(value) if value is not None else 0

    async def get_json(self, key: str) -> Any:
        raw = await self.redis.get(self._k(key))
        return None if raw is None else orjson.loads(raw)

    async def set_json(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        await self.redis.set(self._k(key), orjson.dumps(value), px=ttl_ms(ttl_s) or None)

    async def delete(self, key: str) -> None:
        await self.redis.delete(self._k(key))

    async def ping(self) -> None:
        await self.redis.ping()

    def health(self) -> dict[str, Any]:
        return {"backend": "redis", "ok": True}

    async def close(self) -> None:
        await self.redis.aclose()
