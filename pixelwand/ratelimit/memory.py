"""The in-process limiter: one TAT per key in a dict."""

from __future__ import annotations

import time

from pixelwand.ratelimit.base import Decision, RateLimiter, gcra


class MemoryRateLimiter(RateLimiter):
    def __init__(self, clock=time.monotonic) -> None:
        self._tat: dict[str, int] = {}
        self._clock = clock

    async def hit(self, key: str, rps: float) -> Decision:
        return self.hit_sync(key, rps)

    def hit_sync(self, key: str, rps: float) -> Decision:
        now = round(self._clock() * 1_000_000)
        decision, tat = gcra(self._tat.get(key, now), now, rps)
        self._tat[key] = tat
        if len(self._tat) > 100_000:  # forget keys that are fully replenished
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return decision
