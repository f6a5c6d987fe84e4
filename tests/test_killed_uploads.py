"""A server killed during a PUT leaves its temporary file; the sweeper reaps it (issue 11, item 9).

Run as an operator sees it: `pixelwand serve` in a subprocess (SQLite + local disk), a PUT
whose body stops half-way, `kill -9`. The `.part` file it leaves — and local copies of S3
objects (`pixelwand-*` in the temp directory) left the same way — are removed once older
than the upload retention: at the next start-up, and by `pixelwand sweep`. Younger ones,
which may belong to a live request of another process, are kept.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.test_cli import _env, _ok, _printed_keys, _serve, _stderr_log, _stop

pytestmark = pytest.mark.slow

DAY = 86400


def _backdate(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _wait_for(condition, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_temp_files_of_a_killed_upload_are_reaped_at_start_up_and_by_sweep(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    env = {**_env(data), "TMPDIR": str(systmp)}
    parts = data / "storage" / ".tmp"

    proc, base = _serve(env, tmp_path / "first.log")
    try:
        [key] = _printed_keys(tmp_path / "first.log")
        size = 64 * 1024 * 1024
        r = httpx.post(
            f"{base}/api/v1/assets",
            json={
                "mode": "presign",
                "originalName": "big.mp4",
                "mimeType": "video/mp4",
                "size": size,
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200, r.text
        url = urlsplit(r.json()["uploadUrl"])
        # Half a body, then nothing: the server is streaming it into a .part file.
        sock = socket.create_connection((url.hostname, url.port))
        sock.sendall(
            f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: video/mp4\r\nContent-Length: {size}\r\n\r\n".encode()
            + b"\0" * (8 * 1024 * 1024)
        )
        _wait_for(lambda: any(p.stat().st_size > 0 for p in parts.glob("*.part")))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        sock.close()
    finally:
        _stop(proc)
    [left] = list(parts.glob("*.part"))  # what issue 11 found: it stays forever

    # Older than the retention: reaped at the next start-up. A younger one is kept.
    _backdate(left, DAY + 60)
    young = parts / "young.part"
    young.write_bytes(b"x")
    old_copy, young_copy = systmp / "pixelwand-old.jpg", systmp / "pixelwand-young.jpg"
    old_copy.write_bytes(b"x")
    young_copy.write_bytes(b"x")
    _backdate(old_copy, DAY + 60)
    unrelated = systmp / "someone-else.tmp"
    unrelated.write_bytes(b"x")
    _backdate(unrelated, DAY + 60)

    proc, _ = _serve({**env, "PIXELWAND_SWEEP_INTERVAL_SECONDS": "3600"}, tmp_path / "second.log")
    try:
        _wait_for(lambda: not left.exists() and not old_copy.exists())
    finally:
        _stop(proc)
    assert young.exists() and young_copy.exists() and unrelated.exists()

    # `pixelwand sweep` does the same, with no server running.
    _backdate(young, DAY + 60)
    _backdate(young_copy, DAY + 60)
    out = _ok(env, "sweep")
    assert "2 temporary files" in out, out
    assert not young.exists() and not young_copy.exists() and unrelated.exists()


def test_a_full_disk_on_a_live_server_is_one_503_and_the_connection_lives_on(
    tmp_path: Path,
) -> None:
    """`pixelwand serve` with its store on a 2 MiB tmpfs: a 3 MiB PUT answers 503 on a
    keep-alive connection, the next request on the same connection is answered, and the
    server logged the fault once, with the request id (no "Exception in ASGI application")."""
    import http.client
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        env = {**_env(tmp_path / "data"), "PIXELWAND_STORAGE_URL": f"local:{disk}/store"}
        log = tmp_path / "serve.log"
        proc, base = _serve(env, log)
        try:
            [key] = _printed_keys(log)
            size = 3 * 1024 * 1024
            r = httpx.post(
                f"{base}/api/v1/assets",
                json={
                    "mode": "presign",
                    "originalName": "big.jpg",
                    "mimeType": "image/jpeg",
                    "size": size,
                },
                headers={"Authorization": f"Bearer {key}"},
            )
            url = urlsplit(r.json()["uploadUrl"])
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            conn.request(
                "PUT",
                f"{url.path}?{url.query}",
                body=b"\xff\xd8\xff" + b"\0" * (size - 3),
                headers={"Content-Type": "image/jpeg", "X-Request-Id": "disk-full-put"},
            )
            answer = conn.getresponse()
            assert answer.status == 503 and answer.getheader("connection") != "close"
            assert b"storage unavailable" in answer.read()
            local_port = conn.sock.getsockname()[1]
            conn.request("GET", "/healthz")
            again = conn.getresponse()
            assert again.status == 200 and again.read()
            assert conn.sock.getsockname()[1] == local_port  # the same connection
            conn.close()
        finally:
            _stop(proc)
        errors = _stderr_log(log).read_text()
        assert "Exception in ASGI application" not in errors, errors
        lines = [line for line in errors.splitlines() if "storage unavailable" in line]
        assert len(lines) == 1 and "[disk-full-put]" in lines[0], errors
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
