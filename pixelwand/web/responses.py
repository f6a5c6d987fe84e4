"""JSON responses (orjson) and the two error shapes: REST and GraphQL."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from pixelwand.errors import PixelWandError
from pixelwand.priority import give_way, heavy

_JSON_TYPE = (b"content-type", b"application/json")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        # Every API answer comes here: the two headers Starlette would work out, made
        # directly when nothing else is asked for (its generic version: ~2.5 us a request).
        if (
            headers is None
            and self.media_type is JSONResponse.media_type
            and self.status_code >= 200
            and self.status_code not in (204, 304)
        ):
            self.raw_headers = [(b"content-length", b"%d" % len(self.body)), _JSON_TYPE]
            return
        super().init_headers(headers)


# Large answers go out in pieces of about this size, with a pause for other requests between
# two: one `write` of a whole 1 MB answer was a single long event-loop step.
BODY_CHUNK = 64 * 1024


class EncodedJSONResponse(Response):
    """A JSON answer encoded beforehand in fragments (`encode_in_slices`), never joined into
    one buffer (a 10 MB answer was copied once per level of nesting): sent in pieces of
    about BODY_CHUNK, with a pause for other requests between two."""

    media_type = "application/json"

    def __init__(self, fragments: list[bytes], status_code: int = 200) -> None:
        self.fragments = fragments
        self.status_code = status_code
        self.background = None
        self.body = b""
        size = sum(map(len, fragments))
        self.raw_headers = [(b"content-length", b"%d" % size), _JSON_TYPE]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with heavy():
            await self._send(send)

    async def _send(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        piece: list[bytes] = []
        size = 0
        for fragment in self.fragments:
            piece.append(fragment)
            size += len(fragment)
            if size >= BODY_CHUNK:
                body = b"".join(piece)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                piece, size = [], 0
                await give_way()
        await send({"type": "http.response.body", "body": b"".join(piece), "more_body": False})


async def encode_in_slices(value: Any, pause_after: float = 0.001) -> list[bytes]:
    """`orjson.dumps(value)` as fragments (joined, byte for byte the same), pausing for other
    requests whenever `pause_after` seconds of encoding have passed: dicts are taken apart,
    and lists of more than 16 items are encoded item by item (a large answer's 10 MB in one
    `dumps` was one event-loop step of tens of milliseconds)."""
    clock = time.perf_counter
    last = clock()
    out: list[bytes] = []

    async def encode(v: Any) -> None:
        nonlocal last
        if v.__class__ is dict:
            out.append(b"{")
            for n, (key, item) in enumerate(v.items()):
                out.append(b"%s%s:" % (b"," if n else b"", orjson.dumps(key)))
                await encode(item)
            out.append(b"}")
        elif v.__class__ is list and len(v) > 16:
            out.append(b"[")
            for n, item in enumerate(v):
                if n:
                    out.append(b",")
                out.append(orjson.dumps(item))
                if clock() - last > pause_after:
                    await give_way()
                    last = clock()
            out.append(b"]")
        else:
            out.append(orjson.dumps(v))

    await encode(value)
    return out


def rest_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def graphql_error(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(path: str, error: PixelWandError) -> Response:
    """`error` in the shape of the surface `path` belongs to (GraphQL or REST)."""
    if path == "/graphql" or path.startswith("/graphql/"):
        return graphql_error(error.status, error.message, error.code)
    return rest_error(error.status, error.message)
