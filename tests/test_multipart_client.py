"""pixelwand.client.multipart against the app on both backends: a whole upload, and one
resumed after its client process was killed mid-way."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixelwand.client.multipart import UploadError, upload_file_async
from tests.conftest import BASE_URL
from tests.support.big_files import MIB, stored_sha256, write_file

ROOT = Path(__file__).resolve().parent.parent
PART = 8 * MIB


class CountingPuts(httpx.AsyncBaseTransport):
    """Counts the part PUTs a client sends through `inner`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.puts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.puts.append(str(request.url))
        return await self.inner.handle_async_request(request)


def _client(app: Any) -> tuple[httpx.AsyncClient, CountingPuts, CountingPuts]:
    local = CountingPuts(httpx.ASGITransport(app=app))
    remote = CountingPuts(httpx.AsyncHTTPTransport())
    return httpx.AsyncClient(mounts={BASE_URL: local, "all://": remote}), local, remote


async def test_the_client_uploads_a_file_in_parallel_parts(tenant, app, tmp_path):
    size = 3 * PART + 4321
    path = tmp_path / "movie.mp4"
    sha = write_file(path, size, seed=3)
    seen: list[tuple[int, int]] = []
    client, local, remote = _client(app)
    async with client:
        asset = await upload_file_async(
            path,
            api_url=BASE_URL,
            api_key=tenant.key,
            progress=lambda done, total: seen.append((done, total)),
            concurrency=3,
            tags=["film"],
            http=client,
        )
    assert asset["size"] == size
    assert asset["tags"] == ["film"]
    assert asset["mimeType"] == "video/mp4"  # guessed from the name
    assert len(local.puts) + len(remote.puts) == 4
    assert seen[-1] == (size, size)
    assert all(total == size for _, total in seen)
    assert await stored_sha256(app.state.runtime.storage, asset["storageKey"]) == sha


async def test_the_client_reports_refusals(tenant, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(UploadError) as caught:
        await upload_file_async(
            path, api_url=BASE_URL, api_key=tenant.key, mime_type="text/plain", http=tenant.http
        )
    assert caught.value.status == 400
    assert "text/plain" in caught.value.message


# --- a client that crashes ------------------------------------------------------------------

# Run in a child process: the client, over TCP, slowed down so that the test can kill it
# half-way. Requests for the app's public URL (http://testserver) go to the live server.
_CHILD = """
import asyncio, sys, time
import httpx
from pixelwand.client.multipart import upload_file_async

port, key, path, resume = sys.argv[1:]


class ToLiveServer(httpx.AsyncBaseTransport):
    def __init__(self):
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request):
        request.url = request.url.copy_with(host="127.0.0.1", port=int(port))
        return await self.inner.handle_async_request(request)


def progress(done, total):
    print(done, total, flush=True)
    time.sleep(0.05)  # a slow link


async def main():
    mounts = {"http://testserver": ToLiveServer(), "all://": httpx.AsyncHTTPTransport()}
    async with httpx.AsyncClient(mounts=mounts, timeout=60) as http:
        await upload_file_async(
            path, api_url="http://testserver", api_key=key, mime_type="video/mp4",
            resume_file=resume, concurrency=2, progress=progress, http=http,
        )
    print("done", flush=True)


asyncio.run(main())
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def live_port(app: Any) -> AsyncIterator[int]:
    """The session's app served over TCP as well, from this event loop."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
        assert not task.done(), "the live server did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def _listed(tenant, upload_id: str) -> list[int]:
    r = await tenant.post("/api/v1/assets", json={"mode": "multipart-list", "uploadId": upload_id})
    assert r.status_code == 200, r.text
    return sorted(p["partNumber"] for p in r.json()["parts"])


@pytest.mark.slow
async def test_an_upload_resumes_after_the_client_is_killed(tenant, app, tmp_path, live_port):
    size = 6 * PART + 999
    path = tmp_path / "long.mp4"
    sha = write_file(path, size, seed=4)
    resume = tmp_path / "long.mp4.upload.json"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        str(live_port),
        tenant.key,
        str(path),
        str(resume),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    try:
        # Wait until the server holds two parts, then kill the client without warning.
        while True:
            line = await child.stdout.readline()
            assert line and line != b"done\n", "the client finished before it could be killed"
            if resume.exists():
                state = json.loads(resume.read_text())
                if len(await _listed(tenant, state["upload_id"])) >= 2:
                    break
        child.send_signal(signal.SIGKILL)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()

    upload_id = json.loads(resume.read_text())["upload_id"]
    held = await _listed(tenant, upload_id)
    assert 2 <= len(held) < 7

    # Run again with the same resume file: only the missing parts are sent.
    client, local, remote = _client(app)
    progress: list[int] = []
    async with client:
        asset = await upload_file_async(
            path,
            api_url=BASE_URL,
            api_key=tenant.key,
            mime_type="video/mp4",
            resume_file=resume,
            progress=lambda done, total: progress.append(done),
            http=client,
        )
    assert len(local.puts) + len(remote.puts) == 7 - len(held)
    assert progress[0] >= 2 * PART  # the parts already there count as done
    assert not resume.exists()
    assert asset["size"] == size
    assert await stored_sha256(app.state.runtime.storage, asset["storageKey"]) == sha


async def test_a_resume_file_of_a_changed_file_starts_again(tenant, app, tmp_path):
    path = tmp_path / "v.mp4"
    write_file(path, 4000)
    resume = tmp_path / "v.json"
    resume.write_text(
        json.dumps(
            {
                "upload_id": "c" + "0" * 24,
                "storage_key": "k",
                "part_size": PART,
                "part_count": 1,
                "path": str(path),
                "size": 4000,
                "mtime_ns": path.stat().st_mtime_ns,
            }
        )
    )
    # The resume file names an upload the server does not know: a new one is started.
    asset = await upload_file_async(
        path, api_url=BASE_URL, api_key=tenant.key, resume_file=resume, http=tenant.http
    )
    assert asset["size"] == 4000
    assert not resume.exists()


async def test_a_changed_file_aborts_the_upload_its_resume_file_named(tenant, tmp_path):
    """The file changed since the interrupted upload: the new upload replaces the old one,
    which is aborted, so its parts and its quota reservation do not linger for a day."""
    path = tmp_path / "cut.mp4"
    write_file(path, PART + 10, seed=1)
    r = await tenant.post(
        "/api/v1/assets",
        json={
            "mode": "multipart-start",
            "originalName": "cut.mp4",
            "mimeType": "video/mp4",
            "size": PART + 10,
        },
    )
    old = r.json()
    resume = tmp_path / "cut.json"
    resume.write_text(
        json.dumps(
            {
                "upload_id": old["uploadId"],
                "storage_key": old["storageKey"],
                "part_size": old["partSize"],
                "part_count": old["partCount"],
                "path": str(path.resolve()),
                "size": PART + 10,
                "mtime_ns": path.stat().st_mtime_ns,
            }
        )
    )
    write_file(path, 5000, seed=2)  # edited before the upload was run again
    asset = await upload_file_async(
        path, api_url=BASE_URL, api_key=tenant.key, resume_file=resume, http=tenant.http
    )
    assert asset["size"] == 5000
    r = await tenant.post(
        "/api/v1/assets", json={"mode": "multipart-list", "uploadId": old["uploadId"]}
    )
    assert r.status_code == 404, r.text
    r = await tenant.post("/graphql", json={"query": "{ viewer { storageUsed } }"})
    assert r.json()["data"]["viewer"]["storageUsed"] == 5000
