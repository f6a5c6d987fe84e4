"""uvicorn's httptools protocol with a deadline for request headers.

uvicorn closes a connection that idles between requests (`timeout_keep_alive`), but not
one that connects and sends nothing, or sends half a request line and stops: such a
connection was held for ever (one socket, one file descriptor, one protocol object each).
Here the headers of every request must be complete within `PIXELWAND_HEADER_TIMEOUT_SECONDS`
of the connection being made, or of the request's first byte on a kept-alive connection;
otherwise the connection is closed. Bodies that stop coming are timed in the ASGI app
(pixelwand/web/middleware.py), where a 408 can still be answered.

`pixelwand serve` runs uvicorn with `http="pixelwand.web.protocol:HeaderTimeoutProtocol"`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pixelwand.config import Settings


def _header_timeout() -> float:
    return Settings.from_env(os.environ).header_timeout_seconds


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout: float | None = None  # read once per process from the environment

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if HeaderTimeoutProtocol.header_timeout is None:
            HeaderTimeoutProtocol.header_timeout = _header_timeout()
        self._header_deadline: asyncio.TimerHandle | None = None

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
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
