"""The limiter interface and the GCRA decision both backends share.

GCRA (generic cell rate algorithm) keeps one number per key, the theoretical arrival
time (TAT). With rate r and burst b (one second's allowance, b = ceil(r)), each request
moves TAT forward by T = 1/r and is allowed while TAT - now <= b*T. The Redis backend runs
the same arithmetic in a Lua script, so both give identical answers.

Requests that cause more work than one request (a GraphQL query of thousands of objects)
spend more than one request's allowance: `spend()` takes further units from a request that
`gcra()` admitted, and may take the TAT past the burst — a debt, during which the key's next
requests are refused (429, with the time the debt takes to repay as `Retry-After`). The debt is
capped (`max_debt_us`), so that one request cannot lock a key out for long. docs/hardening.md
"Cost-weighted allowance" says why.

Times are whole microseconds: sums of float seconds drift with the clock's magnitude (at
Unix time a 10 rps burst could lose its last request), while integers below 2**53 are
exact in Python and in Lua's doubles alike.
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


def interval_us(rps: float) -> int:
    return max(1, int(1_000_000 / rps + 0.5))


def gcra(tat: int, now: int, rps: float) -> tuple[Decision, int]:
    """Decide one request at `now` (µs); returns the decision and the new TAT (µs) to store."""
    interval = interval_us(rps)
    burst = burst_for(rps)
    tolerance = burst * interval
    tat = max(tat, now)
    new_tat = tat + interval
    if new_tat - now > tolerance:
        retry_after = (new_tat - now - tolerance) / 1e6
        return Decision(False, burst, 0, (tat - now) / 1e6, retry_after), tat
    remaining = (tolerance - (new_tat - now)) // interval
    return Decision(True, burst, remaining, (new_tat - now) / 1e6, 0.0), new_tat


def spend(
    tat: int, now: int, rps: float, units: int, max_debt_us: int, settle: bool
) -> tuple[Decision, int]:
    """`units` more (fewer when negative) for a request `gcra()` already admitted; returns the
    decision and the new TAT (µs) to store.

    Up front (`settle` false) it is refused when the key is already past its burst (another
    request went into debt since `gcra()` admitted this one); the request's own unit is then
    given back, since a 429 spends nothing. Otherwise, and always when settling (the work is
    done), the units are spent in full, the TAT going past the burst by at most `max_debt_us`;
    a negative amount gives back what an estimate took too much, down to a full allowance."""
    interval = interval_us(rps)
    burst = burst_for(rps)
    tolerance = burst * interval
    tat = max(tat, now)
    if not settle and tat - now > tolerance:
        refunded = tat - interval
        retry_after = (refunded + interval - now - tolerance) / 1e6
        return Decision(False, burst, 0, (refunded - now) / 1e6, retry_after), refunded
    new_tat = max(now, min(tat + units * interval, now + tolerance + max_debt_us))
    remaining = max(0, (tolerance - (new_tat - now)) // interval)
    return Decision(True, burst, remaining, (new_tat - now) / 1e6, 0.0), new_tat


class RateLimiter(abc.ABC):
    @abc.abstractmethod
    async def hit(self, key: str, rps: float) -> Decision:
        """Spend one request of `key`'s allowance at `rps` requests/second."""

    @abc.abstractmethod
    async def spend(
        self, key: str, rps: float, units: int, max_debt: float, *, settle: bool = False
    ) -> Decision:
        """Spend `units` more requests' allowance (`spend()`), in debt up to `max_debt`
        seconds past the burst."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
