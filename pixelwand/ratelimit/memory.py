"""The in-process limiter: one TAT per key in a dict."""

from __future__ import annotations

import time

from pixelwand.ratelimit.base import Decision, RateLimiter, gcra, spend


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
        self._prune(now)
        return decision

    async def spend(
        self, key: str, rps: float, units: int, max_debt: float, *, settle: bool = False
    ) -> Decision:
        return self.spend_sync(key, rps, units, max_debt, settle=settle)

    def spend_sync(
        self, key: str, rps: float, units: int, max_debt: float, *, settle: bool = False
    ) -> Decision:
        now = round(self._clock() * 1_000_000)
        max_debt_us = round(max_debt * 1_000_000)
        decision, tat = spend(self._tat.get(key, now), now, rps, units, max_debt_us, settle)
        self._tat[key] = tat
        self._prune(now)
        return decision

    def _prune(self, now: int) -> None:
        if len(self._tat) > 100_000:  # forget keys that are fully replenished
            self._tat = {k: v for k, v in self._tat.items() if v > now}
