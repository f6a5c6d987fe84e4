"""JSON responses (orjson) and the two error shapes: REST and GraphQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

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
