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
from pathlib import Path
from types import TracebackType

import httpx

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

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pixelwand", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

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
