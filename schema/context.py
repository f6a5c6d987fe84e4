"""What every resolver sees: the principal, the runtime and per-request DataLoaders."""

from __future__ import annotations

import dataclasses
from functools import cached_property

import strawberry

from pixelwand.auth import Principal
from pixelwand.errors import Forbidden, Unauthenticated
from pixelwand.ratelimit.allowance import Allowance
from pixelwand.runtime import Runtime
from schema.dataloaders import Loaders


@dataclasses.dataclass
class Context:
    runtime: Runtime
    principal: Principal | None
    # The request's cost limit (schema/execution/cost.py); None: unlimited (in-process use).
    max_cost: int | None = None
    # What the request spends of its key's allowance beyond the gate's one request, by its
    # cost (pixelwand/web/allowance.py); None: nothing more (REST, in-process use).
    allowance: Allowance | None = None
    # Objects placed in lists so far: what the request is charged once it has run.
    objects: int = 0

    @cached_property
    def loaders(self) -> Loaders:
        assert self.principal is not None
        return Loaders(self.principal.org_id, self.max_cost, self._charge)

    def _charge(self, objects: int) -> None:
        self.objects += objects


def require_scope(info: strawberry.Info, scope: str) -> Principal:
    """The request's principal, once it is shown to hold `scope` (each scope grants itself)."""
    principal = info.context.principal
    if principal is None:
        raise Unauthenticated("missing API key: send Authorization: Bearer ak_live_...")
    if not principal.has(scope):
        raise Forbidden(f"this API key lacks the {scope} scope")
    return principal
