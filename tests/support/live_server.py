"""`pixelwand serve` in a subprocess, as an operator starts it, for tools that need a URL.

    with LiveServer(env, tmp) as server:
        org, key = server.org_and_key("ENTERPRISE", "read,write,admin")
        httpx.get(server.base + "/healthz")

The server runs in its own process group; leaving the block stops it (SIGTERM, then
SIGKILL). `env` holds the PIXELWAND_* variables; the port and public URL are added here.
`start()`, `kill()` (SIGKILL to every process: nothing cleans up) and `start()` again restart
the same server on the same port and data.
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
from pathlib import Path
from types import TracebackType

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(
        self, env: dict[str, str], tmp: Path, *, workers: int = 1, startup_timeout: float = 45
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        own = ("PIXELWAND_", "PROMETHEUS_MULTIPROC_DIR")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
        self.env.update(env, PIXELWAND_PUBLIC_URL=self.base)
        self.log = tmp / "serve.log"
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.org_id = ""  # set by live_server(): an organization and an all-scope key of it
        self.key = ""

    def cli(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pixelwand", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def new_key(self, scopes: str, plan_org: str | None = None, name: str = "") -> str:
        org = plan_org or self.org_id
        out = self.cli("keys", "create", "--org", org, "--scopes", scopes, "--name", name)
        return out.strip()

    def org_and_key(self, plan: str, scopes: str) -> tuple[str, str]:
        org = self.cli("orgs", "create", "--name", f"live-{time.time_ns()}", "--plan", plan)
        out = self.cli("keys", "create", "--org", org.strip(), "--scopes", scopes)
        key = next(line for line in out.splitlines() if line.startswith("ak_live_"))
        return org.strip(), key.strip()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> LiveServer:
        self.cli("migrate")
        self.start()
        return self

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pixelwand",
                    "serve",
                    "--no-migrate",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(
                    f"no /healthz within {self.startup_timeout} s:\n{self.output()}"
                )
            time.sleep(0.1)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def kill(self) -> None:
        """SIGKILL to the supervisor and every worker at once."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


# --- a server with a store of its own, for the browser and command-line client tests -------


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
    """A running server on `store`, with an organization on `plan` and an all-scope key."""
    env = {
        **store,
        "PIXELWAND_DATA_DIR": str(tmp / "data"),
        "PIXELWAND_SECRET_KEY": f"live-{uuid.uuid4().hex}",
        "PIXELWAND_SWEEP_INTERVAL_SECONDS": "0",
    }
    with LiveServer(env, tmp) as server:
        server.org_id = server.cli("orgs", "create", "--name", "Live test", "--plan", plan).strip()
        server.key = server.new_key("read,write,admin", name="test admin")
        yield server
