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
"""

from __future__ import annotations

import contextvars
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelwand.errors import boundary_error
from pixelwand.web.responses import error_response

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_VARY_ORIGIN = (b"vary", b"Origin")
# On every answer: browsers must take the Content-Type as given (an uploaded file served as
# image/jpeg is never sniffed into HTML).
_NOSNIFF = (b"x-content-type-options", b"nosniff")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class ResponseExtras:
    """Headers for the response that inner layers add, and whether it has started."""

    __slots__ = ("headers", "started")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.started = False


EXTRAS = "pixelwand.response_extras"  # the scope key Edge keeps the request's extras under


def sending_extras(
    send: Send, extras: ResponseExtras, vary_origin: bool = False
) -> Callable[[Message], Awaitable[None]]:
    """`send`, with the extras' headers (and `Vary: Origin`) added to the response start."""

    async def send_with_extras(message: Message) -> None:
        if message["type"] == "http.response.start":
            extras.started = True
            headers = [*message.get("headers", []), *extras.headers]
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
    ) -> None:
        self.app = app
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
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")[:64]
            elif name == b"origin":
                has_origin = True
        rid = incoming or _new_request_id()
        token = request_id_var.set(rid)
        extras = scope[EXTRAS] = ResponseExtras(
            [(b"x-request-id", rid.encode("latin-1")), _NOSNIFF]
        )
        send_ = sending_extras(send, extras, vary_origin=not has_origin)
        try:
            app = self.cors_app if has_origin else self.app
            await app(scope, receive, send_)
        except Exception as exc:
            # The one place where what escaped a route becomes an answer: nothing escapes
            # the ASGI app (uvicorn would close the keep-alive connection and log it
            # without the request id). A streamed answer already under way cannot change
            # its status: it is cut off, which tells the client it is incomplete.
            if extras.started:
                raise
            if isinstance(exc, ClientDisconnect):
                return  # nobody to answer, and nothing went wrong here
            error = boundary_error(exc, f"{scope.get('method')} {scope.get('path')}")
            answer: ASGIApp = error_response(scope["path"], error)
            if has_origin:  # a browser must be able to read the error too
                answer = self._with_cors(answer)
            await answer(scope, receive, send_)
        finally:
            request_id_var.reset(token)
