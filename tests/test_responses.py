"""JSONResponse makes its headers itself on the common path: the same as Starlette's."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.responses import Response

from pixelwand.web.responses import JSONResponse


class _StarlettesOwn(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@pytest.mark.parametrize("status", [100, 200, 204, 304, 429])
@pytest.mark.parametrize("headers", [None, {"Retry-After": "1"}, {"Content-Length": "3"}])
@pytest.mark.parametrize("media_type", [None, "text/plain"])
@pytest.mark.parametrize("content", [{"é": "ü" * 300}, None])
def test_headers_equal_starlettes(
    status: int, headers: dict[str, str] | None, media_type: str | None, content: Any
) -> None:
    ours = JSONResponse(content, status_code=status, headers=headers, media_type=media_type)
    theirs = _StarlettesOwn(content, status_code=status, headers=headers, media_type=media_type)
    assert ours.body == theirs.body
    assert ours.raw_headers == theirs.raw_headers


# --- large answers: encoded in slices, sent in pieces, with pauses for other requests ------


def _large_answer() -> dict[str, Any]:
    return {
        "data": {
            "collections": [
                {
                    "id": f"c{i}",
                    "name": 'é \u2028 "quoted" \\ \x00',
                    "ratio": 1.5 + i,
                    "none": None,
                    "assets": [
                        {"id": j, "tags": ["a"], "ok": j % 2 == 0, "w": 2**40} for j in range(60)
                    ],
                }
                for i in range(80)
            ],
            "viewer": {"plan": "TEAM", "nested": {"deep": [1, 2, 3]}},
            "empty": [],
        },
        "errors": [{"message": "m", "path": ["a", 0]}],
    }


async def test_encoding_in_slices_is_byte_for_byte_orjson_and_lets_others_run() -> None:
    import asyncio

    from pixelwand.web.responses import encode_in_slices

    value = _large_answer()
    ran = 0
    stop = False

    async def other() -> None:
        nonlocal ran
        while not stop:
            ran += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    before = ran
    encoded = await encode_in_slices(value, pause_after=0.0)
    stop = True
    await task
    assert b"".join(encoded) == orjson.dumps(value)
    # With no time allowed between pauses, the other task ran once per collection at least.
    assert ran - before >= 80


async def test_a_large_encoded_answer_is_sent_in_pieces() -> None:
    from pixelwand.web.responses import BODY_CHUNK, EncodedJSONResponse, encode_in_slices

    value = {"data": {"collections": _large_answer()["data"]["collections"] * 4}}
    fragments = await encode_in_slices(value)
    body = orjson.dumps(value)
    assert len(body) > 3 * BODY_CHUNK
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await EncodedJSONResponse(fragments)({"type": "http"}, None, send)  # type: ignore[arg-type]
    start, *parts = messages
    assert start["status"] == 200
    assert dict(start["headers"])[b"content-length"] == b"%d" % len(body)
    assert dict(start["headers"])[b"content-type"] == b"application/json"
    assert len(parts) >= len(body) // (2 * BODY_CHUNK)
    assert [p["more_body"] for p in parts] == [True] * (len(parts) - 1) + [False]
    assert b"".join(p["body"] for p in parts) == body
