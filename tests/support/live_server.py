"""`pixelwand serve` as an operator runs it, on a free port, for tests that need a real
server over TCP (a browser, the command-line client).

`live_server(backend_name, ...)` gives the server a store of its own: a fresh SQLite file and
directory, or a fresh PostgreSQL database beside the session's SeaweedFS and Redis. The
organization and its key are made with the server-side CLI, as an operator would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 45.0


@dataclass
class LiveServer:
    base: str
    env: dict[str, str]
    log: Path
    org_id: str = ""
    key: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def cli(self, *args: str, timeout: float = 60) -> str:
        return run_cli(self.env, *args, timeout=timeout)

    def new_key(self, scopes: str, plan_org: str | None = None, name: str = "") -> str:
        org = plan_org or self.org_id
        return self.cli("keys", "create", "--org", org, "--scopes", scopes, "--name", name).strip()


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pixelwand", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[Any]) -> None:
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)


def backend_services(name: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The session's shared services for backend `name` (call from a sync fixture: they
    are async fixtures, resolved outside a running event loop)."""
    if name == "sqlite-local":
        return {}
    weed = request.getfixturevalue("seaweed")
    return {
        "PIXELWAND_STORAGE_URL": weed.storage_url,
        "PIXELWAND_RATE_LIMIT_URL": request.getfixturevalue("redis_url"),
    }


@contextlib.asynccontextmanager
async def backend_env(services: dict[str, str], tmp: Path) -> AsyncIterator[dict[str, str]]:
    """PIXELWAND_* variables for a store of the server's own: a fresh SQLite file and
    directory, or (with services) a fresh PostgreSQL database beside them."""
    if not services:
        yield {
            "PIXELWAND_DATABASE_URL": f"sqlite://{tmp}/live.db",
            "PIXELWAND_STORAGE_URL": f"local:{tmp}/storage",
        }
        return
    from tests.conftest import POSTGRES_ADMIN_URL, fresh_database

    async with fresh_database(POSTGRES_ADMIN_URL, "pixelwand_live") as url:
        yield {"PIXELWAND_DATABASE_URL": url, **services}


@contextlib.contextmanager
def live_server(
    store: dict[str, str], tmp: Path, *, plan: str = "ENTERPRISE"
) -> Iterator[LiveServer]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(
        store,
        PIXELWAND_DATA_DIR=str(tmp / "data"),
        PIXELWAND_SECRET_KEY=f"live-{uuid.uuid4().hex}",
        PIXELWAND_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PIXELWAND_SWEEP_INTERVAL_SECONDS="0",
    )
    run_cli(env, "migrate")
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pixelwand", "serve", "--no-migrate", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", env, log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited with {proc.returncode}:\n{server.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"no /healthz in {STARTUP_TIMEOUT:.0f} s:\n{server.output()}")
            time.sleep(0.1)
        server.org_id = server.cli("orgs", "create", "--name", "Live test", "--plan", plan).strip()
        server.key = server.new_key("read,write,admin", name="test admin")
        yield server
    finally:
        _stop(proc)
