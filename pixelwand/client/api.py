"""A small async client for the REST API: the key as a Bearer header, JSON in and out, and
retries of 429/5xx answers with backoff that honours `Retry-After`."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Worth another attempt: the network or the server, not a request that cannot be sent
# (UnsupportedProtocol, LocalProtocolError: the same on every attempt).
RETRY_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
MAX_ATTEMPTS = 6
MAX_DELAY_SECONDS = 30.0


class ClientError(Exception):
    """Something the user must see: a refused request or an unreachable server."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Target:
    url: str
    key: str


def retry_delay(response: httpx.Response | None, attempt: int) -> float:
    """Retry-After when the server gave one, else exponential backoff with jitter."""
    if response is not None:
        value = response.headers.get("retry-after", "")
        with contextlib.suppress(ValueError):
            return min(MAX_DELAY_SECONDS, max(0.0, float(value)))
    return min(MAX_DELAY_SECONDS, 0.5 * 2**attempt) * (0.75 + random.random() / 2)


def segment(value: str) -> str:
    """`value` as one path segment: `/`, `..` and `?` in an ID cannot reach another route
    (dots too, so that an ID of `..` is not a dot segment the URL resolves away)."""
    return quote(value, safe="").replace(".", "%2E")


def error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return f"HTTP {response.status_code}"


async def with_retries(send: Callable[[], Any], *, what: str = "request") -> httpx.Response:
    """Run `send()` (a coroutine factory) until it answers something not worth retrying."""
    for attempt in range(MAX_ATTEMPTS):
        response: httpx.Response | None = None
        try:
            response = await send()
        except httpx.TransportError as exc:
            if attempt == MAX_ATTEMPTS - 1 or not isinstance(exc, RETRY_ERRORS):
                raise ClientError(f"{what} failed: {exc.__class__.__name__}: {exc}") from exc
        else:
            if response.status_code not in RETRY_STATUSES or attempt == MAX_ATTEMPTS - 1:
                return response
        await asyncio.sleep(retry_delay(response, attempt))
    raise AssertionError("unreachable")


class Api:
    def __init__(self, target: Target, *, concurrency: int = 4) -> None:
        self.base = target.url.rstrip("/")
        self.key = target.key
        self._auth = {"Authorization": f"Bearer {target.key}"}
        limits = httpx.Limits(max_connections=max(4, concurrency * 2))
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), limits=limits)

    async def close(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        url = f"{self.base}/api/v1{path}"

        def send() -> Any:
            return self.http.request(method, url, json=json, params=params, headers=self._auth)

        response = await with_retries(send, what=f"{method} {path}")
        if response.status_code >= 400:
            raise ClientError(error_message(response), response.status_code)
        try:
            return response.json()
        except ValueError:  # another app at that address (a dev server's HTML page)
            raise ClientError(
                f"{self.base} answered HTTP {response.status_code} without JSON for"
                f" {method} /api/v1{path}: is it a Pixel Wand server?",
                response.status_code,
            ) from None

    @contextlib.asynccontextmanager
    async def stream_post(self, path: str, json: Any) -> AsyncIterator[httpx.Response]:
        """POST and stream the answer (retried while nothing has been read)."""
        url = f"{self.base}/api/v1{path}"
        for attempt in range(MAX_ATTEMPTS):
            request = self.http.build_request("POST", url, json=json, headers=self._auth)
            try:
                response = await self.http.send(request, stream=True)
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS - 1 or not isinstance(exc, RETRY_ERRORS):
                    raise ClientError(f"POST {path} failed: {exc}") from exc
                await asyncio.sleep(retry_delay(None, attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt < MAX_ATTEMPTS - 1:
                await response.aclose()
                await asyncio.sleep(retry_delay(response, attempt))
                continue
            try:
                if response.status_code >= 400:
                    await response.aread()
                    raise ClientError(error_message(response), response.status_code)
                yield response
            finally:
                await response.aclose()
            return

    async def pages(self, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Every asset matching `params`, newest first, 200 a page."""
        page = 1
        while True:
            body = await self.call(
                "GET", "/assets", params={**params, "page": page, "pageSize": 200}
            )
            for item in body["items"]:
                yield item
            if page >= body["totalPages"]:
                return
            page += 1

    async def collection_id(self, name: str, *, create: bool = False) -> str:
        try:
            body = await self.call("GET", "/collections", params={"name": name})
        except ClientError as exc:
            # A write-only key may not list; creating answers the existing top-level
            # collection of that name (200) or a new one (201).
            if exc.status != 403 or not create:
                raise
            body = {"collections": []}
        if body["collections"]:
            return str(body["collections"][0]["id"])
        if not create:
            raise ClientError(f"collection {name!r} not found", 404)
        made = await self.call("POST", "/collections", json={"name": name})
        return str(made["id"])
