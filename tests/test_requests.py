"""read_body reads what Starlette's Request.body() reads, and fails alike on a disconnect."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import ClientDisconnect, Request

from pixelwand.web.requests import read_body

SCOPE = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}


def _request(messages: list[dict[str, Any]]) -> Request:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    return Request(dict(SCOPE), receive)


@pytest.mark.parametrize(
    "messages",
    [
        [{"type": "http.request", "body": b'{"query": "{ viewer { plan } }"}'}],
        [{"type": "http.request"}],  # no body key at all
        [{"type": "http.request", "body": b"", "more_body": False}],
        [
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"", "more_body": True},
            {"type": "http.request", "body": b"cd", "more_body": False},
        ],
    ],
)
async def test_same_body_as_starlette(messages: list[dict[str, Any]]) -> None:
    assert await read_body(_request(messages)) == await _request(messages).body()


@pytest.mark.parametrize(
    "messages",
    [
        [{"type": "http.disconnect"}],
        [{"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}],
    ],
)
async def test_disconnect_raises_like_starlette(messages: list[dict[str, Any]]) -> None:
    with pytest.raises(ClientDisconnect):
        await _request(messages).body()
    with pytest.raises(ClientDisconnect):
        await read_body(_request(messages))
