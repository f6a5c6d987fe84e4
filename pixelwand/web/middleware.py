"""The outermost layer: request ids, CORS for the requests that are CORS requests, the
response headers that inner layers add, and the one boundary where an exception a route
raised becomes an answer (a translated fault's 503, or a bug's 500), so none escapes.

Request ids are taken from X-Request-Id or made here, echoed back, and put on log
records. CORS: Starlette's CORSMiddleware wraps every response it sees, though only a
request with an `Origin` header (a browser's) gets CORS headers; the rest get `Vary:
Origin` alone. So requests without `Origin` skip it and get that header here, one
send-wrapper fewer on every API call (3% of a get-by-id's CPU, measured with py-spy).
For the same reason the gate does not wrap `send` for its rate-limit headers: it adds
them to the request's `ResponseExtras`, which this layer's one wrapper sends.

Bodies that stop coming: a request that announces a body (Content-Length or chunked) gets
a `receive` that waits at most `body_timeout` seconds for each part of it; past that the
request fails with 408 and the connection is closed. Headers that stop coming are the HTTP
protocol's business (pixelwand/web/protocol.py).

Refused bodies (413) are read to their end and dropped before the answer goes out, up to
DRAIN_BYTES and DRAIN_SECONDS: a server that answers and closes while the client is still
sending makes the kernel reset the connection, and the reset throws the answer away in the
client's buffers, so clients (httpx, browsers) reported a connection error instead of the
413 (a 20 MiB JSON body did, measured). Nothing is kept: memory stays flat. A body declared
larger than DRAIN_BYTES is not worth reading: the answer goes out at once and the
connection is closed, as nginx's lingering close also gives up.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelwand import metrics
from pixelwand.errors import RequestTimeout, boundary_error
from pixelwand.logs import key_var, org_id_var, request_id_var, request_var
from pixelwand.priority import answering
from pixelwand.web.responses import error_response

_VARY_ORIGIN = (b"vary", b"Origin")
_CONNECTION_CLOSE = (b"connection", b"close")
# Answers after which the rest of the request body is not read: the connection is closed.
_CLOSING_STATUSES = frozenset({408, 413})
# How much of a refused body is read and dropped so that its client sees the 413.
DRAIN_BYTES = 32 * 1024 * 1024
DRAIN_SECONDS = 5.0
# On every answer: browsers must take the Content-Type as given (an uploaded file served as
# image/jpeg is never sniffed into HTML).
_NOSNIFF = (b"x-content-type-options", b"nosniff")

access_log = logging.getLogger("pixelwand.access")


class ResponseExtras:
    """Headers for the response that inner layers add, whether it has started, its status."""

    __slots__ = ("headers", "started", "status")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.started = False
        self.status = 500  # until a response starts: what the server answers if none does


EXTRAS = "pixelwand.response_extras"  # the scope key Edge keeps the request's extras under


def sending_extras(
    send: Send, extras: ResponseExtras, vary_origin: bool = False
) -> Callable[[Message], Awaitable[None]]:
    """`send`, with the extras' headers (and `Vary: Origin`) added to the response start."""

    async def send_with_extras(message: Message) -> None:
        if message["type"] == "http.response.start":
            extras.started = True
            extras.status = message["status"]
            headers = [*message.get("headers", []), *extras.headers]
            if message["status"] in _CLOSING_STATUSES:
                headers.append(_CONNECTION_CLOSE)
            message["headers"] = _with_vary_origin(headers) if vary_origin else headers
        await send(message)

    return send_with_extras


def _new_request_id() -> str:
    # For correlating log lines, not a secret: no system call per request as uuid4 makes.
    return f"{random.getrandbits(64):016x}"


def _with_vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """What CORSMiddleware does for a request without Origin: add Origin to Vary."""
    for i, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            return [*headers[:i], (name, value + b", Origin"), *headers[i + 1 :]]
    return [*headers, _VARY_ORIGIN]


def _receiving_in_time(receive: Receive, timeout: float) -> Receive:
    """`receive`, failing with RequestTimeout when a part of the body takes too long.

    Only until the body is complete: afterwards `receive` waits for the disconnect, for as
    long as a streamed answer lasts."""
    done = False

    async def receive_in_time() -> Message:
        nonlocal done
        if done:
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), timeout)
        except TimeoutError:
            done = True
            raise RequestTimeout(
                f"request body not received: nothing came for {timeout:g} seconds"
            ) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            done = True
        return message

    return receive_in_time


class _Body:
    """How much of a request's body has been received, and whether all of it."""

    __slots__ = ("complete", "declared", "received")

    def __init__(self, declared: int | None) -> None:
        self.declared = declared
        self.received = 0
        self.complete = False

    def tracking(self, receive: Receive) -> Receive:
        async def receive_tracked() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    self.complete = True
            else:
                self.complete = True  # disconnected: nothing more will come
            return message

        return receive_tracked

    async def drain(self, receive: Receive) -> None:
        """Read what is left of the body and drop it, within DRAIN_BYTES and DRAIN_SECONDS."""
        if self.declared is not None and self.declared > DRAIN_BYTES:
            return
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while not self.complete and self.received <= DRAIN_BYTES:
                    await receive()
        except (TimeoutError, RequestTimeout, ClientDisconnect):
            pass


def _draining_refusals(send: Send, receive: Receive, body: _Body) -> Send:
    async def send_after_draining(message: Message) -> None:
        if (
            message["type"] == "http.response.start"
            and message["status"] == 413
            and not body.complete
        ):
            await body.drain(receive)
        await send(message)

    return send_after_draining


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Sequence[str],
        allow_methods: Sequence[str],
        allow_headers: Sequence[str],
        expose_headers: Sequence[str],
        max_age: int,
        access_log: bool = False,
        body_timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.body_timeout = body_timeout
        self._with_cors = functools.partial(
            CORSMiddleware,
            allow_origins=allow_origins,
            allow_methods=allow_methods,
            allow_headers=allow_headers,
            expose_headers=expose_headers,
            max_age=max_age,
        )
        self.cors_app = self._with_cors(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        has_origin = False
        has_body = False
        declared: int | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")[:64]
            elif name == b"origin":
                has_origin = True
            elif name == b"content-length":
                has_body = value != b"0"
                declared = int(value) if value.isdigit() and len(value) <= 18 else None
            elif name == b"transfer-encoding":
                has_body = True
        body = _Body(declared) if has_body else None
        if body is not None:
            if self.body_timeout > 0:
                receive = _receiving_in_time(receive, self.body_timeout)
            receive = body.tracking(receive)
        rid = incoming or _new_request_id()
        token = request_id_var.set(rid)
        org_token = org_id_var.set(None)
        key_token = key_var.set(None)
        request_token = request_var.set(
            (scope["method"], scope["path"], lambda: route_template(scope))
        )
        extras = scope[EXTRAS] = ResponseExtras(
            [(b"x-request-id", rid.encode("latin-1")), _NOSNIFF]
        )
        send_ = sending_extras(send, extras, vary_origin=not has_origin)
        if body is not None:
            send_ = _draining_refusals(send_, receive, body)
        started = time.perf_counter()
        try:
            app = self.cors_app if has_origin else self.app
            with answering():
                await app(scope, receive, send_)
        except Exception as exc:
            # The one place where what escaped a route becomes an answer: nothing escapes
            # the ASGI app (uvicorn would close the keep-alive connection and log it
            # without the request id). A streamed answer already under way cannot change
            # its status: it is cut off, which tells the client it is incomplete.
            if extras.started:
                raise
            if isinstance(exc, ClientDisconnect):
                extras.status = 499  # nobody to answer, and nothing went wrong here
                return
            error = boundary_error(exc, f"{scope.get('method')} {scope.get('path')}")
            answer: ASGIApp = error_response(scope["path"], error)
            if has_origin:  # a browser must be able to read the error too
                answer = self._with_cors(answer)
            await answer(scope, receive, send_)
        finally:
            self._observe(scope, extras.status, time.perf_counter() - started)
            request_id_var.reset(token)
            org_id_var.reset(org_token)
            key_var.reset(key_token)
            request_var.reset(request_token)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        """The request's duration into the histogram, and its access-log line."""
        route = route_template(scope)
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "_OTHER"
        metrics.request_duration.labels(method, route, status).observe(seconds)
        if self.access_log:
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                seconds * 1000,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )


# OpenTelemetry's `http.request.method`: the methods HTTP defines; any other is "_OTHER",
# so that no client can add label values (series) by inventing methods.
_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/api/v1/assets/{id}`), never the raw path: the
    label stays bounded whatever clients request."""
    route = scope.get("route")
    if route is None:  # answered before routing (the gate's 401/429): match it here
        app = scope.get("app")
        for candidate in getattr(app, "routes", ()):
            if candidate.matches(scope)[0] is not Match.NONE:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
