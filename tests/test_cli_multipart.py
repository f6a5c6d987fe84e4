"""`pixelwand upload` sends big files in resumable parts: above `--multipart-threshold` the
file goes through multipart (the server refuses it as one PUT), and after the client is
SIGKILLed mid-upload the same command continues the upload from its resume file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.helpers import make_mp4_head
from tests.support.live_server import (
    ROOT,
    LiveServer,
    backend_env,
    backend_services,
    live_server,
)

pytestmark = pytest.mark.slow

SINGLE_PUT_LIMIT = 10 * 1024 * 1024  # the server refuses one PUT above this

# The CLI, with a hook that SIGKILLs its own process once two parts have been sent.
KILL_AFTER_TWO_PARTS = """
import os, signal, sys
import pixelwand.client.multipart as m
real, sent = m._put_part, [0]
async def put(*args, **kwargs):
    etag = await real(*args, **kwargs)
    sent[0] += 1
    if sent[0] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return etag
m._put_part = put
from pixelwand.cli import main
sys.argv[0] = "pixelwand"
raise SystemExit(main())
"""


@pytest.fixture(scope="module", params=BACKENDS)
def services(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    return request.param, backend_services(request.param, request)


@pytest.fixture(scope="module")
async def live(
    services: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    name, shared = services
    tmp = tmp_path_factory.mktemp(f"multipart-{name}")
    async with backend_env(shared, tmp) as store:
        limited = {**store, "PIXELWAND_MAX_UPLOAD_BYTES": str(SINGLE_PUT_LIMIT)}
        with live_server(limited, tmp, plan="BUSINESS") as server:
            yield server


def run_cli(
    live: LiveServer, cache: Path, *args: str, script: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(PIXELWAND_URL=live.base, PIXELWAND_API_KEY=live.key, XDG_CACHE_HOME=str(cache))
    head = ["-c", script] if script else ["-m", "pixelwand"]
    return subprocess.run(
        [sys.executable, *head, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def api(live: LiveServer, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(
        method, live.base + path, headers={"Authorization": f"Bearer {live.key}"}, **kw
    )
    assert r.status_code < 300, (r.status_code, r.text)
    return r.json()


def big_video(path: Path, size: int) -> str:
    """A file with an MP4 head and random content; its sha256 as the API spells it."""
    data = make_mp4_head(4096) + os.urandom(size - 4096)
    path.write_bytes(data)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def asset_with_facts(live: LiveServer, asset_id: str) -> Any:
    """The asset once the facts worker has hashed it (contentHash is computed after complete)."""
    for _ in range(600):
        asset = api(live, "GET", f"/api/v1/assets/{asset_id}")
        if asset["contentHash"] is not None:
            return asset
        time.sleep(0.1)
    raise AssertionError(f"no contentHash for {asset_id}: {asset}")


def resume_files(cache: Path) -> list[Path]:
    folder = cache / "pixelwand" / "uploads"
    return sorted(folder.glob("*.json")) if folder.exists() else []


async def test_above_the_threshold_goes_in_parts(live: LiveServer, tmp_path: Path) -> None:
    video = tmp_path / "film.mp4"
    digest = big_video(video, 20_000_000)
    cache = tmp_path / "cache"

    # As one PUT the server refuses it (over its single-upload limit) ...
    single = run_cli(live, cache, "upload", str(video), "--json")
    assert single.returncode == 1, single.stdout + single.stderr
    (refused,) = [json.loads(line) for line in single.stdout.splitlines()]
    assert refused["status"] == "failed" and refused["assetId"] is None

    # ... above the threshold it goes in parts and arrives whole.
    done = run_cli(live, cache, "upload", str(video), "--multipart-threshold", "1048576", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (result,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert result["status"] == "uploaded" and result["error"] is None, result
    asset = asset_with_facts(live, result["assetId"])
    assert asset["size"] == 20_000_000
    assert asset["contentHash"] == digest
    assert asset["mediaType"] == "VIDEO"
    assert resume_files(cache) == []  # removed after success

    # The summary table (no --json) and the contentHash skip work as before.
    again = run_cli(live, cache, "upload", str(video), "--multipart-threshold", "1048576")
    assert again.returncode == 0, again.stderr
    assert "Upload summary" in again.stdout


async def test_killed_upload_resumes_when_run_again(live: LiveServer, tmp_path: Path) -> None:
    video = tmp_path / "long.mp4"
    size = 40_000_000  # five parts of 8 MiB (the last one smaller)
    digest = big_video(video, size)
    cache = tmp_path / "cache"
    args = ("upload", str(video), "--multipart-threshold", "1048576", "--concurrency", "1")

    killed = run_cli(live, cache, *args, "--json", script=KILL_AFTER_TWO_PARTS)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    (resume,) = resume_files(cache)
    state = json.loads(resume.read_text())
    assert state["path"] == str(video.resolve()) and state["size"] == size
    listed = api(
        live,
        "POST",
        "/api/v1/assets",
        json={"mode": "multipart-list", "uploadId": state["upload_id"]},
    )
    held = {p["partNumber"] for p in listed["parts"]}
    assert held == {1, 2}, listed
    assert state["part_count"] == 5

    done = run_cli(live, cache, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert result["status"] == "uploaded", result
    asset = asset_with_facts(live, result["assetId"])
    # The same upload was continued (its storage key), not a new one started.
    assert asset["storageKey"] == state["storage_key"]
    assert asset["size"] == size
    assert asset["contentHash"] == digest
    assert resume_files(cache) == []
