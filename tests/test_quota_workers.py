"""The quota holds across processes on SQLite: `pixelwand serve --workers 2`, one database file.

Within one process Tortoise runs one SQLite transaction at a time; between processes the
reservation's first statement takes SQLite's write lock, so two workers never both grant
the last space (issue 11, item 7; PostgreSQL's row lock is exercised in-process by
tests/api/test_quota_concurrency.py, whose pool runs the transactions side by side).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.test_cli import ROOT, _env, _free_port, _ok

pytestmark = pytest.mark.slow

QUOTA = 50_000
SIZE = 15_000  # three fit


async def test_two_sqlite_workers_never_grant_more_than_fits(tmp_path: Path) -> None:
    env = {**_env(tmp_path / "data"), "PIXELWAND_PLAN_BUSINESS_QUOTA_BYTES": str(QUOTA)}
    _ok(env, "migrate")
    org = _ok(env, "orgs", "create", "--name", "quota", "--plan", "BUSINESS").strip()
    keys = [
        _ok(env, "keys", "create", "--org", org, "--scopes", "read,write").strip().splitlines()[-1]
        for _ in range(4)
    ]
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pixelwand", "serve", "--port", str(port), "--workers", "2"),
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while True:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                await asyncio.sleep(0.2)

            async def presign(key: str) -> int:
                # A connection of its own each: the two workers share the requests.
                async with httpx.AsyncClient(base_url=base, timeout=30) as own:
                    r = await own.post(
                        "/api/v1/assets",
                        json={
                            "mode": "presign",
                            "originalName": "q.jpg",
                            "mimeType": "image/jpeg",
                            "size": SIZE,
                        },
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    return r.status_code

            for _ in range(2):  # twice: a second round finds the quota already full
                statuses = await asyncio.gather(*(presign(k) for k in keys for _ in range(5)))
                assert set(statuses) <= {200, 402}, statuses
                if statuses.count(200):
                    assert statuses.count(200) == 3, statuses
                else:
                    assert statuses.count(402) == 20, statuses
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        log.close()
