"""The gate every API request passes: 401 → 402 (plan) → 429 → 413, then rate-limit headers.

A pure ASGI middleware (no per-request Request object) in front of /graphql and /api/v1.
The principal it resolves is left in `scope["state"]["principal"]`.

413: a body past the JSON body limit is refused here, before any of it is read: from
Content-Length when there is one; a chunked body is read up to the limit (refused as soon
as it passes it) and handed on whole. Either refusal closes the connection, so that the
rest of the body is not read at all.
"""

from __future__ import annotations

import math

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelwand import metrics
from pixelwand.errors import PayloadTooLarge, PaymentRequired, PixelWandError, RateLimited
from pixelwand.logs import key_var, org_id_var
from pixelwand.plans import Plan
from pixelwand.ratelimit import Decision
from pixelwand.runtime import Runtime
from pixelwand.web.middleware import EXTRAS, ResponseExtras, sending_extras
from pixelwand.web.responses import graphql_error, rest_error

GATED_PREFIXES = ("/graphql", "/api/v1")
# Public pages under a gated prefix (DESIGN.md "Public pages"): no key, no rate limit.
PUBLIC_PATHS = frozenset(("/api/v1/docs", "/api/v1/openapi.json"))


def _is_graphql(path: str) -> bool:
    return path == "/graphql" or path.startswith("/graphql/")


def wants_graphiql(scope: Scope) -> bool:
    if scope["method"] != "GET":
        return False
    headers = Headers(scope=scope)
    return "text/html" in headers.get("accept", "") and b"query=" not in scope["query_string"]


def _display_prefix(authorization: str | None) -> str | None:
    """The key's display prefix (what `keys list` shows), never the key itself."""
    if not authorization:
        return None
    return authorization.removeprefix("Bearer ").strip()[:12] or None


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than {limit} bytes")


async def _buffered(receive: Receive, limit: int) -> Receive:
    """Read a chunked body up to `limit` bytes (413 past it); a `receive` that replays it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # a disconnect: let the app see it
            first = message
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            break
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first
        return await receive()

    return replay


_RATE_LIMIT_NAMES = frozenset((b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset"))


def _rate_limit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [
        (b"ratelimit-limit", b"%d" % decision.limit),
        (b"ratelimit-remaining", b"%d" % decision.remaining),
        (b"ratelimit-reset", b"%d" % max(0, math.ceil(decision.reset_seconds))),
    ]


def update_rate_limit_headers(scope: Scope, decision: Decision) -> None:
    """Replace the gate's RateLimit-* headers with a later decision on the same key (a
    request that spent more than one request's allowance: pixelwand/ratelimit/allowance.py)."""
    extras: ResponseExtras | None = scope.get(EXTRAS)
    if extras is not None:
        extras.headers = [
            h for h in extras.headers if h[0] not in _RATE_LIMIT_NAMES
        ] + _rate_limit_headers(decision)


class Gate:
    def __init__(self, app: ASGIApp, runtime: Runtime, max_body_bytes: int = 1024 * 1024) -> None:
        self.app = app
        self.runtime = runtime
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if (
            not path.startswith(GATED_PREFIXES)
            or path.rstrip("/") in PUBLIC_PATHS  # `/api/v1/docs/`: the router redirects
            or (_is_graphql(path) and wants_graphiql(scope))
        ):
            await self.app(scope, receive, send)
            return
        authorization = None
        content_length: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:  # ASGI header names are lower case
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        try:
            principal = await self.runtime.authenticator.authenticate(authorization)
            org_id_var.set(principal.org_id)
            key_var.set(_display_prefix(authorization))
            if principal.plan is Plan.FREE:
                raise PaymentRequired("upgrade required: the Free plan has no API access")
            rps = self.runtime.limits(principal.plan).rps
            decision = await self.runtime.limiter.hit(principal.key_id, rps)
            reset = max(0, math.ceil(decision.reset_seconds))
            if not decision.allowed:
                metrics.rate_limited.labels(principal.plan.value).inc()
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
            limit = self.max_body_bytes
            if (
                content_length is not None
                and content_length.isdigit()
                and (int(content_length) > limit)
            ):
                raise _too_large(limit)
            if chunked:
                receive = await _buffered(receive, limit)
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
            extras = scope[EXTRAS] = ResponseExtras([])
            send = sending_extras(send, extras)
        extras.headers += _rate_limit_headers(decision)
        # What the route raises (a database outage met outside GraphQL, a bug) is
        # answered by Edge, the one boundary, with these rate-limit headers.
        await self.app(scope, receive, send)
