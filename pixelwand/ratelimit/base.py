"""The limiter interface and the GCRA decision both backends share.

GCRA (generic cell rate algorithm) keeps one number per key, the theoretical arrival
time (TAT). With rate r and burst b (one second's allowance, b = ceil(r)), each request
moves TAT forward by T = 1/r and is allowed while TAT - now <= b*T. The Redis backend runs
the same arithmetic in a Lua script, so both give identical answers.
"""

from __future__ import annotations

import abc
import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after: float


def burst_for(rps: float) -> int:
    return max(1, math.ceil(rps))


def gcra(tat: float, now: float, rps: float) -> tuple[Decision, float]:
    """Decide one request; returns the decision and the new TAT to store."""
    interval = 1.0 / rps
    burst = burst_for(rps)
    tolerance = burst * interval
    tat = max(tat, now)
    new_tat = tat + interval
    if new_tat - now > tolerance:
        retry_after = new_tat - now - tolerance
        return Decision(False, burst, 0, tat - now, retry_after), tat
    remaining = int((tolerance - (new_tat - now)) / interval + 1e-9)
    return Decision(True, burst, remaining, new_tat - now, 0.0), new_tat


class RateLimiter(abc.ABC):
    @abc.abstractmethod
    async def hit(self, key: str, rps: float) -> Decision:
        """Spend one request of `key`'s allowance at `rps` requests/second."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
