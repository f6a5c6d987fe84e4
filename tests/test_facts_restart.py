"""Facts survive a kill -9: a live `pixelwand serve`, killed while facts are pending.

On each backend pair, with a database of this test's own (so no other server's worker can
fill the facts in its place):

1. the server runs with its facts worker off, so every finalized asset's facts are
   certainly pending; one job is also marked as leased by a process that no longer exists
   (what a kill -9 in the middle of a job leaves behind);
2. the server is killed with SIGKILL and started again with the worker on: every asset's
   facts get filled, the orphaned lease's job once its lease has run out;
3. with the worker on, uploads are finalized and the server is killed at once, whatever
   its worker was doing; after a restart, nothing is left unfilled.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Backend, fresh_database
from tests.helpers import make_image, make_mp4
from tests.test_multiprocess import API_KEY, ROOT, _cli, _free_port

pytestmark = pytest.mark.slow
STARTUP_TIMEOUT = 60.0
FILL_TIMEOUT = 120.0


@pytest.fixture
async def database_url(backend: Backend, tmp_path: Path) -> AsyncIterator[str]:
    if backend.name == "sqlite-local":
        yield f"sqlite://{tmp_path}/restart.db"
        return
    async with fresh_database(backend.database_url, "pixelwand_facts") as url:
        yield url


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    port = env["PIXELWAND_PORT"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pixelwand", "serve", "--port", port],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        assert proc.poll() is None, log.read_text(errors="replace")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.1)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _upload(client: httpx.Client, data: bytes, name: str, mime: str) -> str:
    r = client.post(
        "/api/v1/assets",
        json={"mode": "presign", "originalName": name, "mimeType": mime, "size": len(data)},
    )
    assert r.status_code == 200, r.text
    ticket = r.json()
    put = httpx.put(ticket["uploadUrl"], content=data, headers=ticket["headers"], timeout=30)
    assert put.status_code == 200, put.text
    r = client.post(
        "/api/v1/assets",
        json={
            "mode": "finalize",
            "originalName": name,
            "mimeType": mime,
            "size": len(data),
            "storageKey": ticket["storageKey"],
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _assets(client: httpx.Client) -> dict[str, dict[str, Any]]:
    r = client.get("/api/v1/assets", params={"pageSize": 200})
    assert r.status_code == 200, r.text
    return {a["id"]: a for a in r.json()["items"]}


def _wait_filled(client: httpx.Client, ids: list[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + FILL_TIMEOUT
    while True:
        assets = _assets(client)
        if all(assets[i]["contentHash"] is not None for i in ids):
            return assets
        assert time.monotonic() < deadline, [a for a in assets.values() if not a["contentHash"]]
        time.sleep(0.2)


async def _orphan_lease(database_url: str, asset_id: str, seconds: float) -> None:
    """Mark a job as leased by a process that is gone, its lease running `seconds` more."""
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    sql = "UPDATE fact_jobs SET holder = 'killed:1', attempts = 1, lease_expires_at = {} "
    if database_url.startswith("sqlite://"):
        with sqlite3.connect(database_url.removeprefix("sqlite://")) as db:
            db.execute(sql.format("?") + "WHERE asset_id = ?", (until.isoformat(" "), asset_id))
        return
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(sql.format("$1") + "WHERE asset_id = $2", until, asset_id)
    finally:
        await conn.close()


async def test_facts_pending_at_a_kill_are_filled_after_restart(
    backend: Backend, database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(
        PIXELWAND_DATABASE_URL=database_url,
        PIXELWAND_STORAGE_URL=(
            f"local:{tmp_path}/storage" if backend.is_local else backend.storage_url
        ),
        PIXELWAND_SECRET_KEY=f"restart-{uuid.uuid4().hex}",
        PIXELWAND_DATA_DIR=str(tmp_path / "data"),
        PIXELWAND_PORT=str(port),
        PIXELWAND_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PIXELWAND_SWEEP_INTERVAL_SECONDS="0",
        PIXELWAND_FACTS_WORKER="0",
        PIXELWAND_FACTS_LEASE_SECONDS="3",
        PIXELWAND_FACTS_POLL_SECONDS="0.5",
    )
    _cli(env, "migrate")
    log = tmp_path / "serve.log"
    proc = _start(env, log)
    try:
        keys = [ln.strip() for ln in log.read_text().splitlines() if API_KEY.match(ln.strip())]
        assert len(keys) == 1, log.read_text()
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {keys[0]}"},
            timeout=30,
        )
        image = make_image(400, 300)
        ids = [
            _upload(client, image, "a.jpg", "image/jpeg"),
            _upload(client, make_image(300, 400, ".png"), "b.png", "image/png"),
            _upload(client, make_mp4(seconds=1.0, width=160, height=120), "c.mp4", "video/mp4"),
            _upload(client, image, "a-again.jpg", "image/jpeg"),
        ]
        assert all(a["contentHash"] is None for a in _assets(client).values())
        await _orphan_lease(database_url, ids[0], seconds=4)
        _kill(proc)

        env["PIXELWAND_FACTS_WORKER"] = "1"
        proc = _start(env, log)
        assets = _wait_filled(client, ids)
        assert assets[ids[0]]["contentHash"] == assets[ids[3]]["contentHash"]
        assert assets[ids[0]]["blurhash"] and assets[ids[1]]["thumbhash"]
        assert assets[ids[2]]["videoCodec"] == "h264"

        # Killed while its worker is (or is about to be) busy: nothing stays unfilled.
        more = [
            _upload(client, make_image(1200 + i, 900, ".jpg"), f"late-{i}.jpg", "image/jpeg")
            for i in range(3)
        ]
        _kill(proc)
        proc = _start(env, log)
        assets = _wait_filled(client, more)
        assert all(assets[i]["dominantColor"] for i in more)
        client.close()  # noqa: ASYNC212 - the whole test drives a subprocess synchronously
    finally:
        _kill(proc)


async def test_backfill_fills_assets_finalized_without_a_worker(
    backend: Backend, database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(
        PIXELWAND_DATABASE_URL=database_url,
        PIXELWAND_STORAGE_URL=(
            f"local:{tmp_path}/storage" if backend.is_local else backend.storage_url
        ),
        PIXELWAND_SECRET_KEY=f"backfill-{uuid.uuid4().hex}",
        PIXELWAND_DATA_DIR=str(tmp_path / "data"),
        PIXELWAND_PORT=str(port),
        PIXELWAND_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PIXELWAND_SWEEP_INTERVAL_SECONDS="0",
        PIXELWAND_FACTS_WORKER="0",
    )
    _cli(env, "migrate")
    log = tmp_path / "serve.log"
    proc = _start(env, log)
    try:
        keys = [ln.strip() for ln in log.read_text().splitlines() if API_KEY.match(ln.strip())]
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {keys[0]}"},
            timeout=30,
        )
        ids = [_upload(client, make_image(200 + i, 100), f"{i}.jpg", "image/jpeg") for i in (0, 1)]
        out = _cli(env, "backfill", timeout=120)
        assert "filled 2/2" in out, out
        assets = _assets(client)
        assert all(assets[i]["contentHash"] and assets[i]["blurhash"] for i in ids)
        assert "queued 0 assets" in _cli(env, "backfill", timeout=120)  # nothing left to do
        client.close()  # noqa: ASYNC212 - the whole test drives a subprocess synchronously
    finally:
        _kill(proc)
