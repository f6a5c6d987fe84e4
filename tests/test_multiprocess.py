"""Several processes: `pixelwand serve --workers 2` on PostgreSQL + S3 (SeaweedFS) + Redis.

The production shape, run for real: a SeaweedFS of this module's own, a database of its own
on the test PostgreSQL server, the shared Redis, and the server started as an operator starts
it (`python -m pixelwand migrate`, then `serve --workers 2`). Every request goes over TCP.

Which worker answered a request is read from the kernel, not from the product: each request
gets a connection of its own, and while the connections are still open, /proc tells which
worker process holds the server side of each (its socket inode), matched to the client's
local port. That proves both workers served, and lets the rate-limit test show that the
allowance is shared (a per-worker limiter would let each worker grant a full burst).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import botocore.config
import botocore.exceptions
import botocore.session
import httpx
import pytest

from tests.conftest import fresh_database, running_seaweedfs
from tests.helpers import make_image, without_facts
from tests.support.openapi_check import OPENAPI_HOOKS

ROOT = Path(__file__).resolve().parent.parent
API_KEY = re.compile(r"^ak_live_[A-Za-z0-9]{32,}$")
ORG_ID = re.compile(r"^c[0-9a-z]{24}$")
STARTUP_TIMEOUT = 45.0
TEAM_RPS = 3  # the TEAM plan's default allowance; the server runs with the defaults

pytestmark = pytest.mark.slow

TIMINGS: dict[str, float] = {}


# --- fixtures: a SeaweedFS, a database, the server ---------------------------------------


@pytest.fixture(scope="module")
def weed() -> Iterator[Any]:
    with running_seaweedfs() as server:
        yield server


@pytest.fixture(scope="module")
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A database of this module's own on the session's PostgreSQL server.

    Not the session database itself: other tests leave organizations (so the first-start
    key would not be printed) and deleted assets (so the sweep counts would not be ours)
    there.
    """
    async with fresh_database(postgres_url, "pixelwand_mp") as url:
        yield url


@pytest.fixture(scope="module")
def redis_ready(redis_url: str) -> str:
    return redis_url


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, env: dict[str, str], log: Path):
        self.proc = proc
        self.port = port
        self.env = env
        self.log = log
        self.base = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """Children of the uvicorn supervisor that hold the listening socket."""
        listening = {inode for _, _, state, inode in _tcp_rows() if state == _LISTEN}
        listening &= {inode for lport, _, _, inode in _tcp_rows() if lport == self.port}
        return sorted(pid for pid in _children(self.proc.pid) if _socket_inodes(pid) & listening)

    def workers_by_client_port(self) -> dict[int, int]:
        """client port → worker pid, for every connection open to the server now."""
        inode_to_pid = {inode: pid for pid in self.worker_pids() for inode in _socket_inodes(pid)}
        return {
            rport: inode_to_pid[inode]
            for lport, rport, state, inode in _tcp_rows()
            if lport == self.port and state == _ESTABLISHED and inode in inode_to_pid
        }


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> str:
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM to the whole process group (supervisor and workers), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    with contextlib.suppress(ProcessLookupError):  # stragglers left in the group
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server(
    weed: Any, database_url: str, redis_ready: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("multiprocess")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(
        PIXELWAND_DATABASE_URL=database_url,
        PIXELWAND_STORAGE_URL=weed.storage_url,
        PIXELWAND_RATE_LIMIT_URL=redis_ready,
        PIXELWAND_SECRET_KEY=f"mp-{uuid.uuid4().hex}",
        PIXELWAND_DATA_DIR=str(tmp / "data"),
        PIXELWAND_PUBLIC_URL=f"http://127.0.0.1:{port}",
        # The in-server sweeper stays off: the sweep test runs the CLI's, concurrently.
        PIXELWAND_SWEEP_INTERVAL_SECONDS="0",
        PIXELWAND_STORAGE_TIMEOUT_SECONDS="10",
    )
    _cli(env, "migrate")
    log = tmp / "serve.log"
    began = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pixelwand", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: _stop() reaches the workers
        )
    srv = Server(proc, port, env, log)
    try:
        deadline = began + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited with {proc.returncode}:\n{srv.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{srv.base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"no /healthz within {STARTUP_TIMEOUT:.0f} s:\n{srv.output()}")
            time.sleep(0.1)
        TIMINGS["first /healthz after launch (s)"] = time.monotonic() - began
        # /healthz answers as soon as one worker is up; wait for both to hold the socket.
        while len(srv.worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        TIMINGS["both worker processes up after launch (s)"] = time.monotonic() - began
        yield srv
    finally:
        _stop(proc)
        print("\nmultiprocess timings:", {k: round(v, 2) for k, v in TIMINGS.items()})


@pytest.fixture(scope="module")
def admin_key(server: Server) -> str:
    """The key `serve` prints on its first start against an empty database."""
    keys = [line for line in server.output().splitlines() if API_KEY.match(line.strip())]
    assert len(keys) == 1, server.output()
    return keys[0].strip()


# --- /proc: which process holds which TCP connection -------------------------------------

_LISTEN = "0A"
_ESTABLISHED = "01"


def _tcp_rows() -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, inode) of every TCP socket in this namespace."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                rows.append(
                    (
                        int(f[1].rsplit(":", 1)[1], 16),
                        int(f[2].rsplit(":", 1)[1], 16),
                        f[3],
                        int(f[9]),
                    )
                )
    return rows


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(FileNotFoundError, PermissionError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def _children(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                # pid (comm) state ppid ...; comm may hold spaces and parentheses
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry))
    return children


def _client_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


async def _fan_out(
    server: Server, n: int, method: str, path: str, **kw: Any
) -> tuple[list[tuple[httpx.Response, int | None]], float]:
    """`n` concurrent requests, each on a connection of its own.

    Every connection is opened first (a GET /healthz, which spends no allowance), so the
    burst itself is only the `n` requests: ([(response, worker pid)], seconds it took).
    The clients stay open until the worker of every connection has been read from /proc.
    """
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.base, timeout=30, event_hooks=OPENAPI_HOOKS)
            )
            for _ in range(n)
        ]
        await asyncio.gather(*(c.get("/healthz") for c in clients))
        began = time.monotonic()
        responses = await asyncio.gather(*(c.request(method, path, **kw) for c in clients))
        elapsed = time.monotonic() - began
        workers = server.workers_by_client_port()
        return [(r, workers.get(_client_port(r))) for r in responses], elapsed


def _s3_client(weed: Any) -> Any:
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=weed.endpoint,
        region_name=weed.region,
        aws_access_key_id=weed.access_key,
        aws_secret_access_key=weed.secret_key,
        config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise
    return True


class Api:
    """A client with one key, over TCP to the server (and to SeaweedFS for the PUTs)."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self.auth = {"Authorization": f"Bearer {key}"}

    async def call(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return await self.http.request(method, url, headers=self.auth, **kw)

    async def upload(self, data: bytes, name: str, **finalize: Any) -> dict[str, Any]:
        r = await self.call(
            "POST",
            "/api/v1/assets",
            json={
                "mode": "presign",
                "originalName": name,
                "mimeType": "image/jpeg",
                "size": len(data),
            },
        )
        assert r.status_code == 200, r.text
        ticket = r.json()
        put = await self.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
        assert put.status_code == 200, put.text
        r = await self.call(
            "POST",
            "/api/v1/assets",
            json={
                "mode": "finalize",
                "originalName": name,
                "mimeType": "image/jpeg",
                "size": len(data),
                "storageKey": ticket["storageKey"],
                **finalize,
            },
        )
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture
async def api(server: Server, admin_key: str) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(
        base_url=server.base, timeout=30, event_hooks=OPENAPI_HOOKS
    ) as http:
        yield Api(http, admin_key)


# --- tests -------------------------------------------------------------------------------


async def test_two_worker_processes_both_answer(server: Server, admin_key: str) -> None:
    workers = server.worker_pids()
    assert len(workers) == 2, (workers, server.output())
    assert server.proc.pid not in workers

    seen: Counter[int | None] = Counter()
    auth = {"Authorization": f"Bearer {admin_key}"}
    # The kernel hands a connection to a worker waiting in accept(), and may pick the same
    # one every time both wait (CI saw 480 of 480 over 30 rounds, both workers healthy).
    # A few rounds; then the worker that took them all is paused (SIGSTOP), so only the
    # other can take the next ones: each worker must answer, never left to chance.
    for attempt in range(5):
        if attempt:
            await asyncio.sleep(0.3)
        results, _ = await _fan_out(server, 16, "GET", "/api/v1/assets", headers=auth)
        assert all(r.status_code == 200 for r, _ in results), [r.text for r, _ in results]
        seen.update(pid for _, pid in results)
        if all(seen[pid] for pid in workers):
            break
    else:
        busy = max(workers, key=lambda pid: seen[pid])
        os.kill(busy, signal.SIGSTOP)
        try:
            results, _ = await asyncio.wait_for(
                _fan_out(server, 4, "GET", "/api/v1/assets", headers=auth), 60
            )
        finally:
            os.kill(busy, signal.SIGCONT)
        assert all(r.status_code == 200 for r, _ in results), [r.text for r, _ in results]
        seen.update(pid for _, pid in results)
    assert None not in seen, f"a connection was not traced to a worker: {seen}"
    assert set(seen) == set(workers), f"requests per worker: {dict(seen)}"


async def test_the_whole_api_over_tcp(server: Server, api: Api, weed: Any) -> None:
    # GraphQL: who am I.
    r = await api.call(
        "POST",
        "/graphql",
        json={
            "query": "{ viewer { organization { id name } plan scopes rateLimitPerSecond "
            "storageQuota storageUsed } }"
        },
    )
    assert r.status_code == 200, r.text
    viewer = r.json()["data"]["viewer"]
    assert viewer["organization"]["name"] == "Default"
    assert ORG_ID.match(viewer["organization"]["id"])
    assert viewer["plan"] == "ENTERPRISE"
    assert viewer["scopes"] == ["read", "write", "admin"]
    assert viewer["rateLimitPerSecond"] == 100
    org_id = viewer["organization"]["id"]

    # Collections and presets.
    r = await api.call("POST", "/api/v1/collections", json={"name": "Heroes", "color": "#112233"})
    assert r.status_code == 201, r.text
    collection = r.json()
    assert collection["name"] == "Heroes" and collection["color"] == "#112233"
    r = await api.call("POST", "/api/v1/collections", json={"name": "Heroes"})
    assert (r.status_code, r.json()["id"]) == (200, collection["id"])
    r = await api.call("GET", "/api/v1/collections")
    assert r.status_code == 200
    assert [c["id"] for c in r.json()["collections"]] == [collection["id"]]

    r = await api.call(
        "POST", "/api/v1/export-presets", json={"name": "thumb", "format": "webp", "maxWidth": 32}
    )
    assert r.status_code == 201, r.text
    preset = r.json()
    assert preset["format"] == "WEBP" and preset["maxWidth"] == 32 and preset["quality"] == 85
    r = await api.call("GET", "/api/v1/export-presets")
    assert r.status_code == 200 and [p["name"] for p in r.json()["presets"]] == ["thumb"]

    # Upload: presign → a real PUT to SeaweedFS → finalize.
    data = make_image(64, 48)
    asset = await api.upload(data, "hero.jpg", tags=["hero"], collectionId=collection["id"])
    assert asset["storageKey"].startswith(f"orgs/{org_id}/")
    assert (asset["size"], asset["mimeType"], asset["width"], asset["height"]) == (
        len(data),
        "image/jpeg",
        64,
        48,
    )
    assert asset["tags"] == ["hero"] and asset["collectionId"] == collection["id"]
    with contextlib.closing(_s3_client(weed)) as s3:
        assert _exists(s3, weed.bucket, asset["storageKey"])

    # List, get, patch.
    r = await api.call("GET", "/api/v1/assets", params={"tags": "hero"})
    assert r.status_code == 200, r.text
    page = r.json()
    assert (page["total"], page["totalPages"], page["page"], page["pageSize"]) == (1, 1, 1, 50)
    assert page["items"][0]["id"] == asset["id"]
    r = await api.call("GET", f"/api/v1/assets/{asset['id']}")
    assert r.status_code == 200 and without_facts(r.json()) == without_facts(asset)
    r = await api.call("PATCH", f"/api/v1/assets/{asset['id']}", json={"name": "Hero shot"})
    assert r.status_code == 200 and r.json()["name"] == "Hero shot"
    assert r.json()["originalName"] == "hero.jpg"

    # An export URL, rendered once (by whichever worker) and then reused by both.
    r = await api.call(
        "GET", f"/api/v1/assets/{asset['id']}/export-url", params={"preset": "thumb"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["format"] == "WEBP" and r.json()["cached"] is False
    rendition = await api.http.get(r.json()["url"])
    assert rendition.status_code == 200 and rendition.content[8:12] == b"WEBP"
    for _ in range(4):
        r = await api.call(
            "GET", f"/api/v1/assets/{asset['id']}/export-url", params={"preset": "thumb"}
        )
        assert r.status_code == 200 and r.json()["cached"] is True

    # Delete: gone from every read at once, on either worker.
    r = await api.call("DELETE", f"/api/v1/assets/{asset['id']}")
    assert r.status_code == 200 and r.json() == {"id": asset["id"], "deleted": True}
    results, _ = await _fan_out(server, 8, "GET", f"/api/v1/assets/{asset['id']}", headers=api.auth)
    assert [r.status_code for r, _ in results] == [404] * 8


async def test_rate_limit_is_shared_by_the_workers(server: Server) -> None:
    org_id = _cli(server.env, "orgs", "create", "--name", "Team", "--plan", "TEAM").strip()
    assert ORG_ID.match(org_id), org_id
    key = _cli(server.env, "keys", "create", "--org", org_id, "--scopes", "read").strip()
    assert API_KEY.match(key), key

    # The kernel hands connections to whichever worker accepts first, so one burst may land on a
    # single worker; bursts repeat (each after the allowance has refilled) until one is spread
    # over both. Every burst must stay under the shared ceiling.
    for attempt in range(12):
        if attempt:
            await asyncio.sleep(1.2)  # the TEAM allowance refills within a second
        results, elapsed = await _fan_out(
            server, 30, "GET", "/api/v1/assets", headers={"Authorization": f"Bearer {key}"}
        )
        TIMINGS["30 concurrent TEAM requests (s)"] = elapsed
        per_worker = _check_shared_burst(results, elapsed)
        if len(per_worker) == 2:
            break
    # Both workers took requests in one burst. With a limiter per worker each would grant a
    # burst of its own (2 * TEAM_RPS in all), which the ceiling excludes whenever the burst is
    # quick (measured: 30 requests in ~0.04 s, ceiling 5).
    assert len(per_worker) == 2, f"12 bursts, none spread over both workers: {dict(per_worker)}"


def _check_shared_burst(
    results: list[tuple[httpx.Response, int | None]], elapsed: float
) -> Counter[int | None]:
    """Assert one burst stayed within the shared allowance; its requests per worker."""
    statuses = Counter(r.status_code for r, _ in results)
    assert set(statuses) <= {200, 429}, statuses
    allowed = statuses[200]
    ceiling = TEAM_RPS + math.ceil(elapsed * TEAM_RPS) + 1
    per_worker = Counter(pid for r, pid in results)
    granted = Counter(pid for r, pid in results if r.status_code == 200)
    detail = (
        f"{allowed} allowed in {elapsed:.2f} s; requests {dict(per_worker)}, 200s {dict(granted)}"
    )
    print("\nrate limit across workers:", detail)
    assert TEAM_RPS <= allowed <= ceiling, detail
    assert None not in per_worker, f"a connection was not traced to a worker: {detail}"
    for r, _ in results:
        assert r.headers["RateLimit-Limit"] == str(TEAM_RPS)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json() == {"error": r.json()["error"]} and "rate limit" in r.json()["error"]
    return per_worker


async def _deleted_rows(database_url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM assets WHERE deleted_at IS NOT NULL"))
    finally:
        await conn.close()


async def test_concurrent_sweepers_work_once(
    server: Server, api: Api, weed: Any, database_url: str
) -> None:
    assets = [await api.upload(make_image(32, 24), f"sweep-{i}.jpg") for i in range(6)]
    keep, doomed = assets[0], assets[1:]
    # A rendition too: the sweeper removes those with their asset.
    r = await api.call(
        "GET", f"/api/v1/assets/{doomed[0]['id']}/export-url", params={"format": "png"}
    )
    assert r.status_code == 200, r.text
    for asset in doomed:
        r = await api.call("DELETE", f"/api/v1/assets/{asset['id']}")
        assert r.status_code == 200, r.text
    pending = await _deleted_rows(database_url)  # ours, and any an earlier test deleted
    assert pending >= len(doomed)

    async def sweep() -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pixelwand",
            "sweep",
            env=server.env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(60):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        assert proc.returncode == 0, (out, err)
        return out.decode().strip()

    began = time.monotonic()
    outputs = await asyncio.gather(*(sweep() for _ in range(3)))
    TIMINGS["3 concurrent sweeps (s)"] = time.monotonic() - began

    removed = 0
    for out in outputs:
        if out.startswith("another process is sweeping; only temporary files reaped"):
            continue
        m = re.fullmatch(
            r"removed (\d+) deleted assets and (\d+) stale uploads \((\d+) objects\); "
            r"\d+ staged uploads, \d+ temporary files",
            out,
        )
        assert m, outputs
        removed += int(m.group(1))
    # Each deleted asset was removed by exactly one sweeper: never twice, never missed.
    assert removed == pending, outputs
    assert await _deleted_rows(database_url) == 0

    with contextlib.closing(_s3_client(weed)) as s3:
        for asset in doomed:
            assert not _exists(s3, weed.bucket, asset["storageKey"]), asset["storageKey"]
        listed = s3.list_objects_v2(Bucket=weed.bucket, Prefix="renditions/")
        keys = [o["Key"] for o in listed.get("Contents", [])]
        assert not [k for k in keys if f"/{doomed[0]['id']}/" in k], keys
        assert _exists(s3, weed.bucket, keep["storageKey"])
    r = await api.call("GET", f"/api/v1/assets/{keep['id']}")
    assert r.status_code == 200, r.text
