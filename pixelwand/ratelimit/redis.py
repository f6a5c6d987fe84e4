"""The shared limiter: one TAT per key in Redis, decided by a Lua script in one round trip.

The script mirrors `gcra()` operation for operation in integer microseconds, so both
backends give identical decisions for the same TAT and time. Time comes from Redis `TIME`,
so every process shares one clock. If Redis is unreachable the limiter keeps answering from
an in-process `MemoryRateLimiter` (limits are then per process) and returns to Redis once it
answers again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from pixelwand.ratelimit.base import Decision, RateLimiter
from pixelwand.ratelimit.memory import MemoryRateLimiter

logger = logging.getLogger(__name__)

KEY_PREFIX = "pixelwand:rl:"

# KEYS[1] holds the TAT in whole microseconds; ARGV[1] is rps as Python's repr of a float.
# Each line matches one line of gcra(); every value is an integer below 2**53, exact in Lua's
# doubles, and leaves as an integer reply. The time used and the TAT read are returned too,
# so tests can check the result against gcra() exactly. The key expires when the allowance is
# fully replenished (TAT <= now), at most burst * interval from now.
_GCRA_LUA = """
local rps = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = tonumber(stored) end
local read = tat
local interval = math.max(1, math.floor(1000000 / rps + 0.5))
local burst = math.max(1, math.ceil(rps))
local tolerance = burst * interval
tat = math.max(tat, now)
local new_tat = tat + interval
if new_tat - now > tolerance then
  return {0, burst, 0, tat - now, new_tat - now - tolerance, now, read}
end
local remaining = math.floor((tolerance - (new_tat - now)) / interval)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
  math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, burst, remaining, new_tat - now, 0, now, read}
"""

# spend() in the same way: ARGV[1] rps, ARGV[2] units (negative gives back), ARGV[3] the debt
# cap in whole microseconds, ARGV[4] "1" to settle (never refused). The key then lives until
# the debt is repaid and the allowance full again.
_SPEND_LUA = """
local rps = tonumber(ARGV[1])
local units = tonumber(ARGV[2])
local max_debt = tonumber(ARGV[3])
local settle = ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = tonumber(stored) end
local read = tat
local interval = math.max(1, math.floor(1000000 / rps + 0.5))
local burst = math.max(1, math.ceil(rps))
local tolerance = burst * interval
tat = math.max(tat, now)
local new_tat
local result
if (not settle) and tat - now > tolerance then
  new_tat = tat - interval
  result = {0, burst, 0, new_tat - now, new_tat + interval - now - tolerance, now, read}
else
  new_tat = math.max(now, math.min(tat + units * interval, now + tolerance + max_debt))
  local remaining = math.max(0, math.floor((tolerance - (new_tat - now)) / interval))
  result = {1, burst, remaining, new_tat - now, 0, now, read}
end
if new_tat > now then
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
    math.max(1, math.ceil((new_tat - now) / 1000)))
else
  redis.call('DEL', KEYS[1])
end
return result
"""


class RedisRateLimiter(RateLimiter):
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.25,
        retry_interval: float = 1.0,
        max_connections: int = 64,
    ) -> None:
        # No client-side retries: redis-py's default retries with backoff would turn one
        # dead Redis into seconds of latency per request. Failing fast and answering from
        # memory is the point. The blocking pool waits (up to `timeout`) for a free
        # connection under load instead of failing as the plain pool does at its cap.
        self._pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = Redis.from_pool(self._pool)
        self._script = self._redis.register_script(_GCRA_LUA)
        self._spend_script = self._redis.register_script(_SPEND_LUA)
        self._fallback = MemoryRateLimiter()
        self._retry_interval = retry_interval
        self._where = _describe(self._pool.connection_kwargs)
        self._down_since: float | None = None  # monotonic time of the outage's first failure
        self._next_attempt = 0.0  # while down, Redis is not tried before this time
        self._last_ok = 0.0

    async def hit(self, key: str, rps: float) -> Decision:
        if not rps > 0:
            raise ValueError(f"rps must be positive, got {rps!r}")
        return await self._decide(
            lambda: self._eval(key, rps), lambda: self._fallback.hit_sync(key, rps)
        )

    async def spend(
        self, key: str, rps: float, units: int, max_debt: float, *, settle: bool = False
    ) -> Decision:
        if not rps > 0:
            raise ValueError(f"rps must be positive, got {rps!r}")
        return await self._decide(
            lambda: self._eval_spend(key, rps, units, max_debt, settle),
            lambda: self._fallback.spend_sync(key, rps, units, max_debt, settle=settle),
        )

    async def _decide(
        self,
        remote: Callable[[], Awaitable[tuple[Decision, int, int]]],
        local: Callable[[], Decision],
    ) -> Decision:
        """Redis's decision, or the in-process one while Redis does not answer."""
        started = time.monotonic()
        if started < self._next_attempt:
            return local()
        if self._down_since is not None:
            # This request probes Redis; the others keep answering from memory meanwhile,
            # so a Redis that still times out costs one request a timeout per interval.
            self._next_attempt = started + self._retry_interval
        try:
            decision, _, _ = await remote()
        except (RedisError, OSError) as exc:
            self._failed(exc, started)
            return local()
        self._last_ok = started
        if self._down_since is not None:
            logger.info(
                "rate limiter: Redis at %s answers again after %.1f s; limits are shared again",
                self._where,
                started - self._down_since,
            )
            self._down_since = None
            self._next_attempt = 0.0
        return decision

    async def close(self) -> None:
        await self._redis.aclose()

    async def _eval(self, key: str, rps: float) -> tuple[Decision, int, int]:
        """One script run: the decision, the Redis time (µs) it used and the TAT it read."""
        allowed, limit, remaining, reset, retry_after, now, tat = await self._script(
            keys=[KEY_PREFIX + key], args=[repr(float(rps))]
        )
        decision = Decision(bool(allowed), limit, remaining, reset / 1e6, retry_after / 1e6)
        return decision, int(now), int(tat)

    async def _eval_spend(
        self, key: str, rps: float, units: int, max_debt: float, settle: bool
    ) -> tuple[Decision, int, int]:
        """One run of the spend script: as `_eval`."""
        allowed, limit, remaining, reset, retry_after, now, tat = await self._spend_script(
            keys=[KEY_PREFIX + key],
            args=[repr(float(rps)), int(units), round(max_debt * 1_000_000), int(settle)],
        )
        decision = Decision(bool(allowed), limit, remaining, reset / 1e6, retry_after / 1e6)
        return decision, int(now), int(tat)

    def _failed(self, exc: BaseException, started: float) -> None:
        if started < self._last_ok:
            # Redis answered a request that began after this one: this failure is stale
            # (e.g. a connection broken before a restart), not a new outage.
            return
        self._next_attempt = time.monotonic() + self._retry_interval
        if self._down_since is None:
            self._down_since = started
            logger.warning(
                "rate limiter: Redis at %s unavailable (%s: %s); limiting in-process, "
                "per process, until it answers again",
                self._where,
                type(exc).__name__,
                exc,
            )


def _describe(kwargs: dict) -> str:
    """Where Redis is, without credentials."""
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
