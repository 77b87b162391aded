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

from .base import DEFAULT_PREFIX, SUBWINDOWS, BucketResult, ReserveResult, SlotResult, WindowResult, sub_window_ms, ttl_ms

# KEYS[i] hash sub-window -> amount, one per window. ARGV: now_ms, step_ms, subwindows, then
# amount_i, limit_i per key. All or nothing: adds only when every window stays within its limit.
# Returns cur, allowed_all, then allowed_i, used_i, retry_ms_i per key.
WINDOWS_ADD = """
local now, step, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = math.floor(now / step)
local out, all = {cur, 1}, 1
local used_of = {}
for k = 1, #KEYS do
  local amount, limit = tonumber(ARGV[2 + 2 * k]), tonumber(ARGV[3 + 2 * k])
  local vals = redis.call('HGETALL', KEYS[k])
  local used, live = 0, {}
  for i = 1, #vals, 2 do
    local s, v = tonumber(vals[i]), tonumber(vals[i + 1])
    if s < cur - n then redis.call('HDEL', KEYS[k], vals[i]) else used = used + v; live[#live + 1] = {s, v} end
  end
  used_of[k] = used
  local allowed, retry = 1, 0
  if used + amount > limit then
    allowed, all, retry = 0, 0, -1
    if amount <= limit then
      table.sort(live, function(a, b) return a[1] < b[1] end)
      local excess = used + amount - limit
      for _, sv in ipairs(live) do
        excess = excess - sv[2]
        if excess <= 0 then retry = (sv[1] + n + 1) * step - now; break end
      end
    end
  end
  out[#out + 1] = allowed; out[#out + 1] = used; out[#out + 1] = retry
end
if all == 1 then
  for k = 1, #KEYS do
    local amount = tonumber(ARGV[2 + 2 * k])
    redis.call('HINCRBY', KEYS[k], cur, amount)
    redis.call('PEXPIRE', KEYS[k], step * (n + 2))
    out[3 * k + 1] = used_of[k] + amount
  end
end
out[2] = all
return out
"""

# KEYS[i] window hashes. ARGV: now_ms, step_ms, subwindows, then slot_i, delta_i per key.
# A slot that slid out is left alone.
WINDOWS_ADJUST = """
local oldest = math.floor(tonumber(ARGV[1]) / tonumber(ARGV[2])) - tonumber(ARGV[3])
for k = 1, #KEYS do
  local slot = tonumber(ARGV[2 + 2 * k])
  if slot >= oldest and redis.call('EXISTS', KEYS[k]) == 1 then
    redis.call('HINCRBY', KEYS[k], slot, ARGV[3 + 2 * k])
  end
end
return 0
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

# KEYS[1] hash {used: n, r:<rid>: "<amount>:<expires_ms>"}. ARGV: rid, amount, cap, now_ms, hold_ms, ttl_ms.
RESERVE = """
local amount, cap, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local vals = redis.call('HGETALL', KEYS[1])
local used, reserved = 0, 0
for i = 1, #vals, 2 do
  if vals[i] == 'used' then used = tonumber(vals[i + 1])
  else
    local amt, exp = string.match(vals[i + 1], '^(%-?%d+):(%d+)$')
    if tonumber(exp) <= now then redis.call('HDEL', KEYS[1], vals[i]) else reserved = reserved + tonumber(amt) end
  end
end
if used + reserved + amount > cap then return {0, used, reserved} end
redis.call('HSET', KEYS[1], 'r:' .. ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[5])))
if ARGV[6] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
return {1, used, reserved + amount}
"""

# ARGV: rid, actual, ttl_ms.
SETTLE = """
redis.call('HDEL', KEYS[1], 'r:' .. ARGV[1])
local used = redis.call('HINCRBY', KEYS[1], 'used', ARGV[2])
if ARGV[3] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return used
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
        self._windows_add = self.redis.register_script(WINDOWS_ADD)
        self._windows_adjust = self.redis.register_script(WINDOWS_ADJUST)
        self._bucket_take = self.redis.register_script(BUCKET_TAKE)
        self._slot_acquire = self.redis.register_script(SLOT_ACQUIRE)
        self._reserve = self.redis.register_script(RESERVE)
        self._settle = self.redis.register_script(SETTLE)
        self._incr = self.redis.register_script(INCR)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _now(self) -> int:
        return int(self.clock() * 1000)

    async def windows_add(self, items: Sequence[tuple[str, int, int]], window_s: float) -> list[WindowResult]:
        args: list[int] = [self._now(), sub_window_ms(window_s), SUBWINDOWS]
        for _, amount, limit in items:
            args += (amount, limit)
        out = await self._windows_add(keys=[self._k(key) for key, _, _ in items], args=args)
        cur = int(out[0])
        return [WindowResult(bool(out[i]), int(out[i + 1]), -1.0 if out[i + 2] < 0 else out[i + 2] / 1000, cur)
                for i in range(2, len(out), 3)]

    async def windows_adjust(self, items: Sequence[tuple[str, int, int]], window_s: float) -> None:
        args: list[int] = [self._now(), sub_window_ms(window_s), SUBWINDOWS]
        for _, slot, delta in items:
            args += (slot, delta)
        await self._windows_adjust(keys=[self._k(key) for key, _, _ in items], args=args)

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
