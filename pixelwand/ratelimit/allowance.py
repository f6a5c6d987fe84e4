"""Cost-weighted allowance: a GraphQL request spends its key's allowance in proportion to the
work it causes, in units of the largest documented REST request.

The gate spends one request for every API call, as the reference documents. A GraphQL
document whose answer may hold more objects in lists than the largest documented REST request
(a page of 200 assets) spends one more request per further started 200 objects, up front from
the cost estimate (schema/execution/cost.py), and after execution the amount is settled to the
objects execution really placed in lists, either way. A request with renders spends at least
one request per render it really performed (what the REST export-url route charges for each);
a rendition already made, or refused, costs nothing more (the estimate counts the renders a
query may ask for, the settlement those it caused: a page of 12 cached thumbnails is one
request, not twelve). So every REST route
and every ordinary GraphQL query still costs exactly one request, and "3 requests/second"
bounds the work a TEAM key causes, whatever the shape of its queries.

A heavy request is admitted while its key is within its burst and spends in full, into debt:
the key's next requests are refused (429, `Retry-After` = when the debt is repaid) until then.
The debt is capped (`PIXELWAND_RATE_LIMIT_MAX_DEBT_SECONDS`, default 60), so that one request
cannot lock a key out for long. docs/hardening.md "Cost-weighted allowance" says why.
"""

from __future__ import annotations

import contextvars

from pixelwand.errors import RateLimited
from pixelwand.ratelimit.base import Decision, RateLimiter

# The largest documented REST request: GET /api/v1/assets?pageSize=200, 200 assets in a list.
# No REST route lists more (tests/api/test_weighted_allowance.py). Objects one per parent (the
# page itself, an asset's focal point or collection) are not counted: execution counts the
# objects in lists, and the estimate counts the same.
OBJECTS_PER_REQUEST = 200


# The renders the current request has performed (one-element list: tasks the request spawns
# copy the context, and share the list); None outside a GraphQL request with an allowance.
_renders_done: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "renders_done", default=None
)


def count_render() -> None:
    """A render really ran for the current request (not a cache hit, not a refusal)."""
    done = _renders_done.get()
    if done is not None:
        done[0] += 1


def request_units(objects: int, renders: int = 0) -> int:
    """How many requests of allowance a GraphQL request spends for `objects` objects in lists
    and `renders` renders: one per started OBJECTS_PER_REQUEST objects, at least one per
    render, at least one."""
    return max(1, -(-objects // OBJECTS_PER_REQUEST), renders)


class Allowance:
    """What one request spends beyond the gate's one unit; `decision` is the limiter's last
    word on the key (None: nothing beyond the gate's), for the RateLimit-* headers."""

    def __init__(
        self, limiter: RateLimiter, key: str, rps: float, max_debt: float, plan: str
    ) -> None:
        self.limiter = limiter
        self.key = key
        self.rps = rps
        self.max_debt = max_debt
        self.plan = plan
        self.charged = 1  # the gate's
        self.renders = 0  # asked for, by the estimate
        self._done = [0]  # performed (count_render)
        self.decision: Decision | None = None

    async def charge(self, objects: int, renders: int) -> None:
        """Before execution, by the estimate of objects in lists; RateLimited when the key
        is already in debt (the gate's unit is then given back: a 429 spends nothing)."""
        self.renders = renders
        self._done = [0]
        _renders_done.set(self._done)
        units = request_units(objects, renders)
        if units <= self.charged:
            return
        decision = await self.limiter.spend(self.key, self.rps, units - self.charged, self.max_debt)
        self.decision = decision
        if not decision.allowed:
            self.charged = 0
            raise RateLimited(
                f"rate limit exceeded: {self.rps:g} requests/second on the {self.plan} plan "
                f"(this query counts as {units} requests: one per {OBJECTS_PER_REQUEST} "
                "objects it may return)",
                decision.retry_after,
            )
        self.charged = units

    async def settle(self, objects: int) -> None:
        """After execution: what the request really produced, less what it was charged."""
        if self.charged == 0:
            return
        units = request_units(objects, min(self.renders, self._done[0]))
        if units == self.charged:
            return
        self.decision = await self.limiter.spend(
            self.key, self.rps, units - self.charged, self.max_debt, settle=True
        )
        self.charged = units
