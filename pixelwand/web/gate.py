"""The gate every API request passes: 401 → 402 (plan) → 429, then rate-limit headers.

A pure ASGI middleware (no per-request Request object) in front of /graphql and /api/v1.
The principal it resolves is left in `scope["state"]["principal"]`.
"""

from __future__ import annotations

import logging
import math

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from pixelwand.errors import (
    DatabaseUnavailable,
    PaymentRequired,
    PixelWandError,
    RateLimited,
    is_database_outage,
)
from pixelwand.plans import Plan
from pixelwand.runtime import Runtime
from pixelwand.web.middleware import EXTRAS, ResponseExtras, sending_extras
from pixelwand.web.responses import graphql_error, rest_error

GATED_PREFIXES = ("/graphql", "/api/v1")
# Public pages under a gated prefix (DESIGN.md "Public pages"): no key, no rate limit.
PUBLIC_PATHS = frozenset(("/api/v1/docs", "/api/v1/openapi.json"))

log = logging.getLogger(__name__)


def _is_graphql(path: str) -> bool:
    return path == "/graphql" or path.startswith("/graphql/")


def wants_graphiql(scope: Scope) -> bool:
    if scope["method"] != "GET":
        return False
    headers = Headers(scope=scope)
    return "text/html" in headers.get("accept", "") and b"query=" not in scope["query_string"]


class Gate:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if (
            not path.startswith(GATED_PREFIXES)
            or path in PUBLIC_PATHS
            or (_is_graphql(path) and wants_graphiql(scope))
        ):
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope["headers"]:  # ASGI header names are lower case
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            principal = await self.runtime.authenticator.authenticate(authorization)
            if principal.plan is Plan.FREE:
                raise PaymentRequired("upgrade required: the Free plan has no API access")
            rps = self.runtime.limits(principal.plan).rps
            decision = await self.runtime.limiter.hit(principal.key_id, rps)
            reset = max(0, math.ceil(decision.reset_seconds))
            if not decision.allowed:
                headers = {
                    "RateLimit-Limit": str(decision.limit),
                    "RateLimit-Remaining": str(decision.remaining),
                    "RateLimit-Reset": str(reset),
                    "Retry-After": str(max(1, math.ceil(decision.retry_after))),
                }
                raise RateLimited(
                    f"rate limit exceeded: {rps:g} requests/second on the "
                    f"{principal.plan.value} plan",
                    decision.retry_after,
                )
        except PixelWandError as exc:
            hdrs = headers if isinstance(exc, RateLimited) else None
            if _is_graphql(path):
                response = graphql_error(exc.status, exc.message, exc.code, hdrs)
            else:
                response = rest_error(exc.status, exc.message, hdrs)
            await response(scope, receive, send)
            return

        scope.setdefault("state", {})["principal"] = principal
        extras: ResponseExtras | None = scope.get(EXTRAS)
        if extras is None:  # not behind Edge: send the headers ourselves
            extras = ResponseExtras([])
            send = sending_extras(send, extras)
        extras.headers += [
            (b"ratelimit-limit", b"%d" % decision.limit),
            (b"ratelimit-remaining", b"%d" % decision.remaining),
            (b"ratelimit-reset", b"%d" % reset),
        ]
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            # A database outage met outside GraphQL execution (which maps its own errors),
            # e.g. by a route reading a row directly: 503, like everywhere else, not a 500.
            if extras.started or isinstance(exc, PixelWandError) or not is_database_outage(exc):
                raise
            log.warning("database unavailable on %s: %r", path, exc)
            down = DatabaseUnavailable()
            if _is_graphql(path):
                response = graphql_error(down.status, down.message, down.code)
            else:
                response = rest_error(down.status, down.message)
            await response(scope, receive, send)
