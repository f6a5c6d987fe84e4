"""uvicorn's httptools protocol with a deadline for request headers.

uvicorn closes a connection that idles between requests (`timeout_keep_alive`), but not
one that connects and sends nothing, or sends half a request line and stops: such a
connection was held for ever (one socket, one file descriptor, one protocol object each).
Here the headers of every request must be complete within `PIXELWAND_HEADER_TIMEOUT_SECONDS`
of the connection being made, or of the request's first byte on a kept-alive connection;
otherwise the connection is closed. Bodies that stop coming are timed in the ASGI app
(pixelwand/web/middleware.py), where a 408 can still be answered.

The request line and headers are bounded in bytes too (`PIXELWAND_MAX_HEADER_BYTES`):
httptools keeps whatever arrives until the blank line, so one connection could make the
process hold 50 MB of a single header (and keep it). Past the bound the request is
answered 431 before the rest is parsed; what the client still sends is read and dropped
for at most `DRAIN_SECONDS` (then the connection is closed), so that the client sees the
answer instead of a reset (as the edge middleware does for a 413).

`pixelwand serve` runs uvicorn with `http="pixelwand.web.protocol:HeaderTimeoutProtocol"`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pixelwand.config import Settings

DRAIN_SECONDS = 5.0


def _header_limits() -> tuple[float, int]:
    settings = Settings.from_env(os.environ)
    return settings.header_timeout_seconds, settings.max_header_bytes


def _too_large_answer(limit: int) -> bytes:
    body = b'{"error":"request headers too large: at most %d bytes"}' % limit
    return b"".join(
        [
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-content-type-options: nosniff\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout: float | None = None  # read once per process from the environment
    max_header_bytes = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if HeaderTimeoutProtocol.header_timeout is None:
            limits = _header_limits()
            HeaderTimeoutProtocol.header_timeout, HeaderTimeoutProtocol.max_header_bytes = limits
        self._header_deadline: asyncio.TimerHandle | None = None
        # Bytes of the current request's line and headers so far; None once they are
        # complete (its body is the ASGI app's to bound).
        self._header_bytes: int | None = 0
        self._dropping = False  # answered 431: what still comes is dropped

    def data_received(self, data: bytes) -> None:
        if self._dropping:
            return
        limit = self.max_header_bytes
        if self._header_bytes is None or not limit or self._header_bytes + len(data) <= limit:
            if self._header_bytes is not None:
                self._header_bytes += len(data)
            super().data_received(data)
            return
        # Only what fits within the bound goes to the parser; if the headers end in it,
        # the rest (a body, a next request) is taken as usual.
        room = limit - self._header_bytes
        self._header_bytes = limit
        super().data_received(data[:room])
        if self._header_bytes is not None:
            self._headers_too_large()
        elif not self.transport.is_closing():
            self.data_received(data[room:])

    def _headers_too_large(self) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        self.transport.write(_too_large_answer(self.max_header_bytes))
        self._dropping = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._header_deadline = self.loop.call_later(DRAIN_SECONDS, self._headers_too_slow)

    def _arm(self) -> None:
        timeout = self.header_timeout or 0
        if self._header_deadline is None and timeout > 0:
            self._header_deadline = self.loop.call_later(timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._header_bytes = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._header_bytes = 0  # what comes next is the next request's line and headers
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
