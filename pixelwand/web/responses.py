"""JSON responses (orjson) and the two error shapes: REST and GraphQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from pixelwand.errors import PixelWandError

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


# Bodies larger than this go out in pieces of it, with a pause for other requests between
# two: one `write` of a whole 1 MB answer was a single long event-loop step.
BODY_CHUNK = 64 * 1024


class EncodedJSONResponse(JSONResponse):
    """A JSON answer encoded beforehand (`encode_in_slices`); sent in BODY_CHUNK pieces."""

    def render(self, content: Any) -> bytes:
        assert isinstance(content, bytes)
        return content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.body
        if len(body) <= 2 * BODY_CHUNK or self.background is not None:
            await super().__call__(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        view = memoryview(body)
        for start in range(0, len(body), BODY_CHUNK):
            end = start + BODY_CHUNK
            more = end < len(body)
            piece = bytes(view[start:end])
            await send({"type": "http.response.body", "body": piece, "more_body": more})
            if more:
                await asyncio.sleep(0)


async def encode_in_slices(value: Any, pause_after: float = 0.001) -> bytes:
    """`orjson.dumps(value)`, byte for byte, pausing for other requests whenever
    `pause_after` seconds of encoding have passed: dicts are taken apart, and lists of more
    than 16 items are encoded item by item (a large answer's 10 MB in one `dumps` was one
    event-loop step of tens of milliseconds)."""
    clock = time.perf_counter
    last = clock()

    async def encode(v: Any) -> bytes:
        nonlocal last
        if v.__class__ is dict:
            parts = []
            for key, item in v.items():
                parts.append(orjson.dumps(key) + b":" + await encode(item))
            return b"{" + b",".join(parts) + b"}"
        if v.__class__ is list and len(v) > 16:
            parts = []
            for item in v:
                parts.append(orjson.dumps(item))
                if clock() - last > pause_after:
                    await asyncio.sleep(0)
                    last = clock()
            return b"[" + b",".join(parts) + b"]"
        return orjson.dumps(v)

    return await encode(value)


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
