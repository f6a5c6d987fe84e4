"""Limits that only a real server shows: two `pixelwand serve` processes on one SQLite
database, talked to over raw sockets where HTTP clients would be too polite.

- refused 100 MiB bodies (Content-Length and chunked, REST and /graphql) leave the
  server's RSS flat: they are refused while streaming, never read whole;
- a connection whose headers stop coming, and one that sends nothing, is closed;
- headers past 64 KiB are answered 431, never held;
- a body that stops coming is answered 408 and the connection closed;
- a key revoked through one process is refused by the other within a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_multiprocess import STARTUP_TIMEOUT, _free_port, _stop

ROOT = Path(__file__).resolve().parent.parent
API_KEY = re.compile(r"^ak_live_[A-Za-z0-9]{32,}$")
MIB = 1024 * 1024
TIMEOUT = 2  # the header and body timeouts these servers run with, in seconds

pytestmark = pytest.mark.slow


class Live:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.base = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rss(self) -> int:
        """Resident memory of the serving process (one worker: uvicorn serves in-process)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


def _start(env: dict[str, str], tmp: Path, name: str, *extra: str) -> Live:
    port = _free_port()
    log = tmp / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pixelwand", "serve", "--port", str(port), *extra],
            env={**env, "PIXELWAND_PUBLIC_URL": f"http://127.0.0.1:{port}"},
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    live = Live(proc, port, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{live.output()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{live.base}/healthz", timeout=1).status_code == 200:
                return live
        if time.monotonic() > deadline:
            _stop(proc)
            raise AssertionError(f"no /healthz within {STARTUP_TIMEOUT:.0f} s:\n{live.output()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, Live, str]]:
    """(first, second, admin key): two processes, one SQLite database and storage."""
    tmp = tmp_path_factory.mktemp("live-limits")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(
        PIXELWAND_DATA_DIR=str(tmp / "data"),
        PIXELWAND_SECRET_KEY=f"live-{uuid.uuid4().hex}",
        PIXELWAND_SWEEP_INTERVAL_SECONDS="0",
        PIXELWAND_HEADER_TIMEOUT_SECONDS=str(TIMEOUT),
        PIXELWAND_BODY_TIMEOUT_SECONDS=str(TIMEOUT),
    )
    first = _start(env, tmp, "first")
    second: Live | None = None
    try:
        second = _start(env, tmp, "second", "--no-migrate")
        keys = [line.strip() for line in first.output().splitlines() if API_KEY.match(line.strip())]
        assert len(keys) == 1, first.output()
        yield first, second, keys[0]
    finally:
        _stop(first.proc)
        if second is not None:
            _stop(second.proc)


def _exchange(port: int, head: bytes, body_chunks: Iterator[bytes] = iter(())) -> bytes:
    """Send `head` and as much of the body as the server takes; everything it answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for chunk in body_chunks:
                sock.sendall(chunk)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while data := sock.recv(65536):
                answer += data
        return answer


def _zeros(total: int, chunked: bool) -> Iterator[bytes]:
    block = b" " * MIB
    for _ in range(total // MIB):
        yield (b"%x\r\n" % len(block) + block + b"\r\n") if chunked else block
    if chunked:
        yield b"0\r\n\r\n"


def test_refused_100_mib_bodies_leave_rss_flat(servers: tuple[Live, Live, str]) -> None:
    first, _, key = servers
    auth = f"Authorization: Bearer {key}\r\n".encode()
    for _ in range(3):  # warm up both routes
        httpx.post(
            f"{first.base}/api/v1/collections",
            json={"name": "warm"},
            headers={"Authorization": f"Bearer {key}"},
        )
        httpx.post(
            f"{first.base}/graphql",
            json={"query": "{ viewer { plan } }"},
            headers={"Authorization": f"Bearer {key}"},
        )
    before = first.rss()
    size = 100 * MIB
    for path in (b"/api/v1/collections", b"/graphql"):
        for chunked in (False, True):
            framing = (
                b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % size
            )
            head = (
                b"POST "
                + path
                + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + auth
                + framing
                + b"\r\n"
            )
            answer = _exchange(first.port, head, _zeros(size, chunked))
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
            assert b"request body is larger than 1048576 bytes" in answer, answer[-300:]
            assert b"connection: close" in answer.lower()
    after = first.rss()
    print(
        f"\nRSS before {before / MIB:.0f} MiB, "
        f"after four refused 100 MiB bodies {after / MIB:.0f} MiB"
    )
    # Reading even one of them whole would add at least 100 MiB.
    assert after - before < 40 * MIB, (before, after)


def _header_lines(total: int) -> Iterator[bytes]:
    line = b"X-Padding: " + b"a" * (MIB - 13) + b"\r\n"
    for _ in range(total // MIB):
        yield line
    yield b"\r\n"


def test_oversized_headers_are_431_and_rss_stays_flat(servers: tuple[Live, Live, str]) -> None:
    """httptools keeps request headers until their blank line: one 50 MiB header was held
    (and kept: +50 MiB of RSS per request, answered 200). Past 64 KiB the server answers
    431 and drops the rest; headers within the bound are served as before."""
    first, _, key = servers
    auth = f"Authorization: Bearer {key}\r\n".encode()
    head = b"GET /api/v1/assets HTTP/1.1\r\nHost: x\r\n" + auth
    fits = head + b"X-Padding: " + b"a" * (60 * 1024) + b"\r\nConnection: close\r\n\r\n"
    assert _exchange(first.port, fits).startswith(b"HTTP/1.1 200 "), "60 KiB of headers"
    before = first.rss()
    for _ in range(4):
        answer = _exchange(first.port, head, _header_lines(50 * MIB))
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:300]
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body == {"error": "request headers too large: at most 65536 bytes"}
    long_url = b"GET /api/v1/assets?q=" + b"a" * (70 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert _exchange(first.port, long_url).startswith(b"HTTP/1.1 431 ")
    after = first.rss()
    print(f"\nRSS before {before / MIB:.0f} MiB, after four 50 MiB headers {after / MIB:.0f} MiB")
    assert after - before < 40 * MIB, (before, after)


@pytest.mark.parametrize("path", ["/api/v1/collections", "/graphql"])
@pytest.mark.parametrize("chunked", [False, True])
async def test_an_http_client_sees_the_413_of_a_20_mib_body(
    servers: tuple[Live, Live, str], path: str, chunked: bool
) -> None:
    """httpx's async client sends the whole body before it reads: a server that answered and
    closed at the first megabyte made the kernel reset the connection, and httpx raised
    ReadError six times out of six instead of showing the 413. The refused body is now read
    and dropped first."""
    first, _, key = servers
    body = b'{"name": "' + b"x" * (20 * MIB) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), MIB):
            yield body[i : i + MIB]

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=first.base, headers=headers, timeout=60) as http:
        for _ in range(3):
            r = await http.post(path, content=chunks() if chunked else body)
            assert r.status_code == 413, r.text
            assert "request body is larger than 1048576 bytes" in r.text
            assert r.headers["connection"] == "close"


def test_headers_that_stop_coming_are_cut_off(servers: tuple[Live, Live, str]) -> None:
    first, _, _ = servers
    for partial in (b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"GET /hea"):
        began = time.monotonic()
        answer = _exchange(first.port, partial)
        assert answer == b"", answer  # closed without an answer, not held open
        print(f"\n{partial!r}: closed after {time.monotonic() - began:.1f} s")
    # Also on a kept-alive connection: a whole request, then half of the next one.
    with socket.create_connection(("127.0.0.1", first.port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHo")
        answer = b""
        while data := sock.recv(65536):
            answer += data
        assert answer.count(b"HTTP/1.1 200") == 1, answer


def test_a_body_that_stops_coming_is_408(servers: tuple[Live, Live, str]) -> None:
    first, _, key = servers
    auth = f"Authorization: Bearer {key}\r\n".encode()
    for path, framing, part in (
        (b"/api/v1/collections", b"Content-Length: 100\r\n", b'{"name": "x'),
        (b"/graphql", b"Content-Length: 100\r\n", b'{"query": "'),
        (b"/api/v1/collections", b"Transfer-Encoding: chunked\r\n", b'5\r\n{"nam\r\n'),
    ):
        head = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth + framing + b"\r\n" + part
        answer = _exchange(first.port, head)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        message = f"request body not received: nothing came for {TIMEOUT} seconds"
        if path == b"/graphql":
            assert body == {
                "errors": [{"message": message, "extensions": {"code": "REQUEST_TIMEOUT"}}]
            }
        else:
            assert body == {"error": message}


def test_revocation_is_seen_by_another_process_within_a_second(
    servers: tuple[Live, Live, str],
) -> None:
    first, second, admin = servers

    def gql(live: Live, key: str, query: str) -> Any:
        r = httpx.post(
            f"{live.base}/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200, r.text
        return r.json()

    created = gql(first, admin, 'mutation { createApiKey(scopes: ["read"]) { key apiKey { id } } }')
    key, key_id = (
        created["data"]["createApiKey"]["key"],
        created["data"]["createApiKey"]["apiKey"]["id"],
    )
    url = "/api/v1/export-presets"
    headers = {"Authorization": f"Bearer {key}"}
    # The second process resolves (and caches) the key.
    assert httpx.get(second.base + url, headers=headers).status_code == 200
    revoked = gql(first, admin, f'mutation {{ revokeApiKey(id: "{key_id}") {{ revokedAt }} }}')
    assert revoked["data"]["revokeApiKey"]["revokedAt"]
    # At once on the process that revoked it...
    r = httpx.get(first.base + url, headers=headers)
    assert (r.status_code, r.json()) == (401, {"error": "invalid or revoked API key"})
    # ...and within a second on the other.
    time.sleep(1.0)
    for _ in range(5):
        r = httpx.get(second.base + url, headers=headers)
        assert (r.status_code, r.json()) == (401, {"error": "invalid or revoked API key"})
