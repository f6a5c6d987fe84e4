"""A live server for the load scripts (bench_fairness.py, soak.py): `pixelwand serve` on a
free port over a fresh SQLite database and local storage in a temporary directory, with
organizations and keys made through the CLI, as an operator would."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")},
            "PIXELWAND_DATA_DIR": str(data_dir),
            "PIXELWAND_DATABASE_URL": f"sqlite://{data_dir}/pixelwand.db",
            "PIXELWAND_STORAGE_URL": f"local:{data_dir}/storage",
            "PIXELWAND_SECRET_KEY": "bench",
            "PIXELWAND_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [str(BIN / "pixelwand"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def org_key(self, name: str, plan: str) -> tuple[str, str]:
        """(organization id, API key) of a new organization."""
        org_id = self.cli("orgs", "create", "--name", name, "--plan", plan).split()[-1]
        key = self.cli("keys", "create", "--org", org_id, "--scopes", "read,write").splitlines()[-1]
        return org_id, key.strip()

    def start(self) -> None:
        self.cli("migrate")
        log = open(self.data_dir / "server.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [str(BIN / "pixelwand"), "serve", "--port", str(self.port), "--no-migrate"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.data_dir / 'server.log').read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("server not ready within 60 s")

    def rss_bytes(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@contextlib.contextmanager
def live_server(extra_env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory(prefix="pixelwand-live-") as tmp:
        server = LiveServer(Path(tmp), extra_env)
        try:
            yield server
        finally:
            server.stop()


def seed_collections(
    server: LiveServer, org_id: str, collections: int, per_collection: int
) -> None:
    """`collections` collections of `per_collection` asset rows each (rows only, as
    tests/helpers.seed_assets inserts them), written while the server runs."""
    code = f"""
import asyncio, sys
sys.path.insert(0, {str(ROOT)!r})
from pixelwand import db
from pixelwand.models import Collection
from pixelwand.ids import new_id
from tests.helpers import seed_assets

async def main():
    await db.connect({server.env["PIXELWAND_DATABASE_URL"]!r})
    for c in range({collections}):
        coll = await Collection.create(id=new_id(), organization_id={org_id!r}, name=f"bulk-{{c}}")
        rows = [{{"collection_id": coll.id}} for _ in range({per_collection})]
        await seed_assets({org_id!r}, rows)
    await db.disconnect()

asyncio.run(main())
"""
    subprocess.run([sys.executable, "-c", code], env=server.env, check=True, cwd=ROOT)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
