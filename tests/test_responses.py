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
