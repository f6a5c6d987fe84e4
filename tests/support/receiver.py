"""A webhook receiver on 127.0.0.1: records every POST, answers as a test scripts it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    started: float
    finished: float = 0.0
    complete: bool = True  # False: the sender went away before the whole body came

    def json(self) -> Any:
        return orjson.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, list[int]] = {}  # path → statuses to answer, in turn
        self.delay = 0.0
        self.hold = threading.Event()  # while set, answers wait for `release`
        self.hold_paths: set[str] = set()  # answers to these paths wait for `release` too
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                started = time.monotonic()
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                entry = Received(self.path, headers, body, started, complete=len(body) == length)
                with receiver.lock:
                    receiver.requests.append(entry)
                    script = receiver.scripts.get(self.path)
                    status = script.pop(0) if script else 200
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.hold.is_set() or self.path in receiver.hold_paths:
                    receiver.release.wait(30)
                with contextlib.suppress(OSError):  # the sender may have given up
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                entry.finished = time.monotonic()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    async def wait_for(self, path: str, count: int, within: float = 20.0) -> list[Received]:
        """At least `count` requests to `path` (polling without blocking the event loop,
        where the app's delivery worker runs in the in-process tests)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            got = self.on(path)
            if len(got) >= count:
                return got
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.on(path))} of {count} requests reached {path}")


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
