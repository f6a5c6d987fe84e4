"""Reading a request's body: bounded while it streams, and parsed as JSON with errors that
name the field."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from pixelwand.errors import BadRequest, PayloadTooLarge


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than {limit} bytes")


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The whole body, refused with 413 as soon as it grows past `limit` bytes.

    `Request.body()` goes through an async generator wrapped in `aclosing`, which asyncio
    registers in a weak set: about 15 Python calls for a body that arrives in one message,
    as API requests' bodies do. This reads the same messages directly. The body is read
    once per request here (nothing else calls `request.body()` after it). The gate has
    already refused a Content-Length past the limit; the count here covers chunked bodies
    and anything the gate does not front.

    A compressed body (`Content-Encoding: gzip`) is refused, not read as if it were JSON."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise BadRequest(
            f"Content-Encoding {encoding[:40]!r} is not supported: send the body uncompressed"
        )
    message = await request.receive()
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        body = message.get("body", b"")
        size += len(body)
        if limit is not None and size > limit:
            raise too_large(limit)
        if not message.get("more_body", False):
            if not chunks:
                return body
            chunks.append(body)
            return b"".join(chunks)
        chunks.append(body)
        message = await request.receive()


class _NonFinite(float):
    """A number JSON spelled that no float holds (1e400) or that is not a number (NaN)."""


def _non_finite(text: str) -> float:
    value = float(text)
    return value if value not in (float("inf"), float("-inf")) else _NonFinite(value)


def parse_json(raw: bytes | str, what: str = "request body") -> Any:
    """orjson's parse; what it refuses is looked at again to name a non-finite number's field.

    orjson refuses 1e400, NaN and Infinity outright ("request body is not valid JSON"),
    which says nothing about where; such a number is a 400 naming its field."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        value = json.loads(raw, parse_float=_non_finite, parse_constant=_NonFinite)
    except (ValueError, RecursionError):
        raise BadRequest(f"{what} is not valid JSON") from None
    path = _find_non_finite(value, "")
    if path is not None:
        raise BadRequest(f"{path or 'value'} must be a finite number")
    raise BadRequest(f"{what} is not valid JSON")


def _find_non_finite(value: Any, path: str) -> str | None:
    if isinstance(value, _NonFinite):
        return path
    if isinstance(value, dict):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for sub_path, sub in items:
        found = _find_non_finite(sub, sub_path)
        if found is not None:
            return found
    return None
