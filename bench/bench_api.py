"""API request-path benchmark: the real server under wrk, against a hand-written baseline.

    make bench-api                                  # = .venv/bin/python bench/bench_api.py
    .venv/bin/python bench/bench_api.py --directus  # also Directus from ../shared/peers (minutes)
    BENCH_DIRECTUS=1 make bench-api                 # the same through make

What it does (one run, one machine; every figure in the report comes from this run except the
Directus ones, whose source is stated):

1. Seeds databases with `bench/seed.py`: SQLite with 200 assets in one organization (the
   Directus peer run has 200 + 1 files; the image uploaded for the export-url row makes ours
   201), PostgreSQL with 100,000 live assets in one organization among four others of 20,000.
2. Starts `pixelwand serve --no-migrate` the way a user would (uvicorn, uvloop, httptools, one
   process) pinned to CPU 0 with `taskset -c 0`, and the hand-written baseline
   (`bench/api_baseline.py`, same uvicorn settings) also on CPU 0. The plan's rps is raised
   to 1,000,000 through `PIXELWAND_PLAN_ENTERPRISE_RPS`, so the limiter runs on every request
   but refuses none.
3. Per row: one checked request first (status, shape, and the same data as the REST answer),
   then 3 rounds (`--rounds`), each running every row in turn: wrk pinned to CPU 1
   (`-t1 -c8`), 2 s warm-up, 10 s measured, through `bench/wrk/json.lua` (latency
   percentiles, non-2xx and GraphQL-error counts). A row's figures are its median round by
   req/s. A row with any non-2xx answer, GraphQL error or socket error in any round is
   INVALID. Server peak RSS: VmHWM of the server process, reset (/proc/PID/clear_refs) before
   each warm-up and read after the run; the peak over rounds is reported.
4. Persisted GraphQL rows use Apollo APQ: hash-only POST; on PersistedQueryNotFound the query
   is sent once with its hash to register it (during the checked request), then wrk sends the
   hash only. A server without APQ makes those rows "n/a" (stated, not hidden).
5. PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) of the exact SQL the service issues for the list
   and the filtered page (captured from Tortoise's `tortoise.db_client` logger), custom and
   generic plans, and which indexes they use.
6. py-spy on the server during an extra (unmeasured) REST list pageSize=200 run: top
   functions by self and total time.
7. Prints the table and writes it, with the machine and versions, into docs/benchmarks.md
   under "## API request path" (other sections of that file are kept).

Bounded: fixed 2 + 10 s wrk runs per row and round (about 25 minutes in all with the default
3 rounds), 60 s server start timeouts; every server is stopped by its PID in a `finally`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import seed as seeding  # noqa: E402
from procfs import free_port, proc_status, reset_peak_rss  # noqa: E402

BIN = Path(sys.executable).parent
WORK = Path(os.environ.get("PIXELWAND_BENCH_API_DIR", "/tmp/pixelwand-bench-api"))
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## API request path"
PEERS = ROOT.parent / "shared" / "peers"
PEERS_RESULTS = Path(os.environ.get("PEERS_DIR", "/tmp/peers")) / "results" / "directus.json"
WRK_LUA = ROOT / "bench" / "wrk" / "json.lua"
OPS = ROOT / "compat_rest" / "operations"
RPS = "1000000"

# Targets from the issue.
T_DIRECTUS_FAST = 2.0  # REST and persisted GraphQL list/get rows, x Directus req/s
T_DIRECTUS_ADHOC = 1.0  # ad-hoc GraphQL rows
T_BASELINE = 0.67  # every row, x the hand-written baseline's req/s
T_REST_VS_GQL = 0.9  # REST shim, x direct GraphQL req/s
T_EXPORT_P50_MS = 3.0
T_FILTERED_P50_MS = 15.0
T_RSS_MB = 150.0

FILTER_CANDIDATES = [  # (tag, q, type): the first whose page is full is used
    ("approved", "sun", "IMAGE"),
    ("social", "beach", "IMAGE"),
    ("web", "a", "IMAGE"),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- tools --------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: installing it with apt-get (needs root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(
            f"bench-api needs wrk and could not install it ({exc}); "
            "install it (apt-get install wrk) and run again"
        ) from None
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench-api needs wrk: apt-get ran but no wrk on PATH")
    return found


def ensure_pyspy() -> str | None:
    exe = BIN / "py-spy"
    if exe.exists():
        return str(exe)
    log("py-spy not in the venv: pip install py-spy")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "py-spy"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0 or not exe.exists():
        log(f"py-spy unavailable, no profile: {proc.stderr.strip()[-300:]}")
        return None
    return str(exe)


NPROC = os.cpu_count() or 1
PINNED = NPROC >= 2 and shutil.which("taskset") is not None


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if PINNED else []


_HZ = os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pid: int) -> dict[str, float]:
    """Machine busy/total jiffies, the server's CPU time, our children's (wrk) CPU time."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    with open(f"/proc/{pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "busy": (sum(fields) - idle) / _HZ,
        "wall": time.monotonic(),
        "server": (int(st[11]) + int(st[12])) / _HZ,
        "wrk": kids.ru_utime + kids.ru_stime,
    }


def cpu_delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """CPU use during the run in % of one core: server, wrk, and everything else."""
    wall = max(1e-6, b["wall"] - a["wall"])
    server = 100 * (b["server"] - a["server"]) / wall
    wrk = 100 * (b["wrk"] - a["wrk"]) / wall
    busy = 100 * (b["busy"] - a["busy"]) / wall
    return {"server": server, "wrk": wrk, "other": max(0.0, busy - server - wrk), "busy": busy}


# --- servers --------------------------------------------------------------------------------


class Server:
    """A process we start (pinned), wait for on /healthz, and stop by its PID."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cmd = [c.replace("{port}", str(self.port)) for c in cmd]
        self.env = env
        self.log_path = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0
        self.idle_rss_kb = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        CODE_SEEN[self.name] = code_digest()
        out = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        t0 = time.perf_counter()
        # taskset execs the command: the PID is the server's own (uvicorn, one process).
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        out.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    self.startup_s = time.perf_counter() - t0
                    self.idle_rss_kb = proc_status(self.pid)["VmRSS"]
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within 60 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def product_server(name: str, seeded: seeding.Seeded, data_dir: Path, logdir: Path) -> Server:
    env = seeding.server_env(seeded.database_url, data_dir)
    env.pop("PIXELWAND_LOG_LEVEL", None)  # the default (INFO), as a user runs it
    for plan in ("TEAM", "BUSINESS", "ENTERPRISE"):
        env[f"PIXELWAND_PLAN_{plan}_RPS"] = RPS
    cmd = [*pin(0), str(BIN / "pixelwand"), "serve", "--port", "{port}", "--no-migrate"]
    return Server(name, cmd, env, logdir)


def baseline_server(name: str, seeded: seeding.Seeded, logdir: Path) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env["BENCH_DATABASE_URL"] = seeded.database_url
    cmd = [*pin(0), sys.executable, str(ROOT / "bench" / "api_baseline.py"), "--port", "{port}"]
    return Server(name, cmd, env, logdir)


# --- requests -------------------------------------------------------------------------------


CLIENT_TAG = f"# bench-api client document {os.getpid()}-{int(time.time())}\n"


def operation_text(name: str) -> str:
    """A client's copy of a stored REST operation (same fields, fragments appended).

    It starts with a comment unique to this run, so it is the client's own document: not
    byte-equal to the stored operation (which the server may know already), and its APQ hash
    is unknown to the server until this run registers it.
    """
    source = (OPS / f"{name}.graphql").read_text()
    frag_src = (OPS / "fragments.graphql").read_text()
    frags = {}
    for m in re.finditer(r"fragment\s+(\w+)\s+on\s+\w+\s*\{[^}]*\}", frag_src):
        frags[m.group(1)] = m.group(0)
    wanted = sorted(set(re.findall(r"\.\.\.\s*([A-Za-z_]\w*)", source)))
    return CLIENT_TAG + source + "\n" + "\n".join(frags[f] for f in wanted)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq_body(query: str, variables: dict[str, Any], with_query: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}},
        "variables": variables,
    }
    if with_query:
        body["query"] = query
    return body


REGISTERED: set[str] = set()  # APQ hashes this run registered


def _apq_not_found(payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    for e in payload.get("errors") or []:
        code = (e.get("extensions") or {}).get("code", "")
        if "PersistedQueryNotFound" in e.get("message", "") or code in (
            "PERSISTED_QUERY_NOT_FOUND",
            "PersistedQueryNotFound",
        ):
            return True
    return False


@dataclasses.dataclass
class Request:
    method: str
    url: str
    body: dict[str, Any] | None = None
    graphql_field: str | None = None  # GraphQL: data[field] is the REST-shaped answer
    apq: tuple[str, dict[str, Any]] | None = None  # (query, variables) to register first

    def body_text(self) -> str:
        return json.dumps(self.body, separators=(",", ":")) if self.body is not None else ""


class CheckFailed(Exception):
    pass


def do_request(client: httpx.Client, req: Request) -> tuple[httpx.Response, Any]:
    r = client.request(req.method, req.url, content=req.body_text() or None)
    try:
        payload = r.json()
    except ValueError:
        payload = None
    return r, payload


def check_request(client: httpx.Client, req: Request) -> tuple[Any, dict[str, str], str, bytes]:
    """One request as wrk will send it: (REST-shaped answer, headers, APQ note, body)."""
    note = ""
    if req.apq is not None:
        query, variables = req.apq
        r, payload = do_request(client, req)
        if _apq_not_found(payload):
            reg = client.post("/graphql", json=apq_body(query, variables, with_query=True))
            reg_payload = (
                reg.json()
                if reg.headers.get("content-type", "").startswith("application/json")
                else None
            )
            if (
                reg.status_code != 200
                or not isinstance(reg_payload, dict)
                or reg_payload.get("errors")
            ):
                raise CheckFailed(f"APQ registration refused: {reg.status_code} {reg.text[:300]}")
            note = "registered with PersistedQueryNotFound → query+hash, then hash only"
            REGISTERED.add(sha256_hex(query))
        elif r.status_code == 200 and isinstance(payload, dict) and not payload.get("errors"):
            note = (
                "hash registered earlier in this run (group warm-up or an earlier row)"
                if sha256_hex(query) in REGISTERED
                else "hash already known to the server before this run"
            )
        else:
            raise NotSupported(
                f"server answered the hash-only request with {r.status_code} {r.text[:200].strip()}"
            )
    r, payload = do_request(client, req)
    if r.status_code // 100 != 2:
        raise CheckFailed(f"{req.method} {req.url}: {r.status_code} {r.text[:300]}")
    if not isinstance(payload, dict):
        raise CheckFailed(f"{req.method} {req.url}: not a JSON object: {r.text[:200]}")
    if req.graphql_field is not None:
        if payload.get("errors"):
            raise CheckFailed(f"GraphQL errors: {payload['errors']}")
        payload = (payload.get("data") or {}).get(req.graphql_field)
        if payload is None:
            raise CheckFailed(f"no data.{req.graphql_field} in the answer")
    return payload, dict(r.headers), note, r.content


class NotSupported(Exception):
    pass


# --- wrk -------------------------------------------------------------------------------------


def run_wrk(
    wrk: str, base: str, req: Request, token: str, seconds: int, conns: int
) -> dict[str, Any]:
    env = {
        **os.environ,
        "WRK_METHOD": req.method,
        "WRK_BODY": req.body_text(),
        "WRK_TOKEN": token,
        "WRK_GRAPHQL": "1" if req.graphql_field else "0",
    }
    cmd = [*pin(1), wrk, "-t1", f"-c{conns}", f"-d{seconds}s", "-s", str(WRK_LUA), base + req.url]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    for line in proc.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return dict(json.loads(line[8:]))
    raise RuntimeError(f"wrk gave no summary (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


# --- rows ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    key: str
    label: str
    group: str  # "SQLite, 201 assets" / "PostgreSQL, 100k assets"
    kind: str  # rest | gql | pq | export | base | raw
    shape: str  # list50 | list200 | get | export | pg-list50 | pg-filtered | pg-get
    server: str  # product | baseline
    request: Request
    expect_items: int | None = None
    # results
    wrk: dict[str, Any] | None = None
    rss_kb: int | None = None
    status: str = "pending"  # ok | INVALID: ... | n/a: ...
    note: str = ""
    answer: Any = None
    ratelimit: str = ""
    bytes_per_response: int = 0
    body: bytes = b""
    cpu: dict[str, float] = dataclasses.field(default_factory=dict)
    # every round's measured run: (wrk result, CPU use, peak RSS kB); `wrk`/`cpu` above
    # hold the median round's (by req/s)
    rounds: list[tuple[dict[str, Any], dict[str, float], int]] = dataclasses.field(
        default_factory=list
    )

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def rps(self) -> float | None:
        return float(self.wrk["rps"]) if self.wrk and self.ok else None

    def ms(self, field: str) -> float | None:
        return self.wrk[field] / 1000.0 if self.wrk and self.ok else None

    @property
    def rss_mb(self) -> float | None:
        return self.rss_kb / 1024.0 if self.rss_kb else None


def check_row(row: Row, client: httpx.Client, reference: Row | None = None) -> bool:
    """The row's one checked request; False (and the row's status says why) if it fails."""
    try:
        answer, headers, note, body = check_request(client, row.request)
    except NotSupported as exc:
        row.status = f"n/a: {exc}"
        log(f"{row.key}: {row.status}")
        return False
    except (CheckFailed, httpx.HTTPError) as exc:
        row.status = f"INVALID: check request failed: {exc}"
        log(f"{row.key}: {row.status}")
        return False
    row.note = note
    row.answer = answer
    row.body = body
    row.ratelimit = headers.get("ratelimit-limit", "")
    if row.expect_items is not None and len(answer.get("items", [])) != row.expect_items:
        row.status = (
            f"INVALID: expected {row.expect_items} items, got {len(answer.get('items', []))}"
        )
        log(f"{row.key}: {row.status}")
        return False
    if reference is not None:
        if answer != reference.answer:
            row.status = "INVALID: the answer differs from the REST answer for the same data"
            log(f"{row.key}: {row.status}")
            return False
        if row.server == "baseline":
            same = body == reference.body
            row.note = (
                "body byte-identical to the REST answer"
                if same
                else f"same JSON data as the REST answer, bytes differ ({len(body)} vs "
                f"{len(reference.body)})"
            )
    row.status = "checked"
    return True


def run_round(row: Row, server: Server, token: str, wrk: str, args: argparse.Namespace) -> None:
    """One round of a checked row: warm-up, then the measured wrk run."""
    reset_peak_rss(server.pid)
    run_wrk(wrk, server.base, row.request, token, args.warmup, args.connections)
    before = cpu_snapshot(server.pid)
    res = run_wrk(wrk, server.base, row.request, token, args.duration, args.connections)
    cpu = cpu_delta(before, cpu_snapshot(server.pid))
    rss_kb = proc_status(server.pid)["VmHWM"]
    row.rounds.append((res, cpu, rss_kb))
    errors = {
        k: res[k]
        for k in (
            "non2xx",
            "graphql_errors",
            "err_connect",
            "err_read",
            "err_write",
            "err_timeout",
        )
        if res.get(k)
    }
    if errors:
        row.status = f"INVALID: {errors}; first: {res.get('first_bad', '')[:200]}"
    log(
        f"{row.key} (round {len(row.rounds)}): {res['rps']:.1f} req/s "
        f"p50 {res['p50_us'] / 1000:.2f} ms p99 {res['p99_us'] / 1000:.2f} ms "
        f"RSS {rss_kb / 1024:.1f} MB {int(res['bytes'] / max(1, res['requests']))} B; "
        f"CPU % of one core: server {cpu['server']:.0f}, wrk {cpu['wrk']:.0f}, "
        f"everything else {cpu['other']:.0f}" + ("" if not errors else f" [{row.status}]")
    )


def settle(row: Row) -> None:
    """The row's figures: the median round by req/s (its percentiles and CPU), peak RSS."""
    if not row.rounds:
        return
    ordered = sorted(row.rounds, key=lambda r: r[0]["rps"])
    res, cpu, _ = ordered[(len(ordered) - 1) // 2]
    row.wrk, row.cpu = res, cpu
    row.rss_kb = max(r[2] for r in row.rounds)
    row.bytes_per_response = int(res["bytes"] / max(1, res["requests"]))
    if row.status == "checked":
        row.status = "ok"
    log(
        f"{row.key}: median of {len(row.rounds)} rounds {res['rps']:.1f} req/s "
        f"(rounds: {rounds_cell(row)}) [{row.status}]"
    )


# --- uploads / export-url -------------------------------------------------------------------


def make_jpeg(path: Path) -> None:
    import pyvips

    w, h = 1600, 1067
    x = pyvips.Image.xyz(w, h)
    r = (x[0] * 255 / w).cast("uchar")
    g = (x[1] * 255 / h).cast("uchar")
    noise = pyvips.Image.gaussnoise(w, h, mean=128, sigma=30).cast("uchar")
    img = r.bandjoin([g, noise])
    img.copy(interpretation="srgb").jpegsave(str(path), Q=85)


def upload(client: httpx.Client, path: Path) -> str:
    """presign → PUT → finalize, as the README documents; the asset id."""
    meta = {"originalName": path.name, "mimeType": "image/jpeg", "size": path.stat().st_size}
    r = client.post("/api/v1/assets", json={"mode": "presign", **meta})
    r.raise_for_status()
    p = r.json()
    r = client.request(p["method"], p["uploadUrl"], content=path.read_bytes(), headers=p["headers"])
    r.raise_for_status()
    r = client.post(
        "/api/v1/assets", json={"mode": "finalize", "storageKey": p["storageKey"], **meta}
    )
    r.raise_for_status()
    return str(r.json()["id"])


# --- EXPLAIN ---------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[tuple[str, list[Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if not msg.lstrip().upper().startswith("SELECT"):
            return
        if isinstance(record.args, tuple) and len(record.args) == 2:
            sql, values = record.args
            self.statements.append((str(sql), list(values or [])))
        else:
            sql = msg.rpartition(": ")[0]
            self.statements.append((sql, []))


async def capture_service_sql(database_url: str, org_id: str, f: Any) -> list[tuple[str, list]]:
    """The SQL `pixelwand.services.assets.list_assets` sends for `f`, with its parameters."""
    from pixelwand import db
    from pixelwand.services import assets

    handler = _Capture()
    logger = logging.getLogger("tortoise.db_client")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        await db.connect(database_url)
        try:
            await assets.list_assets(org_id, f)
        finally:
            await db.disconnect()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    return handler.statements


def _literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | float):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


async def explain_pg(url: str, sql: str, values: list[Any], mode: str, diag_index: str = "") -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of `sql` as a prepared statement, as asyncpg runs it.

    The server's asyncpg statements are named prepared statements; PostgreSQL plans their first
    five executions with the parameters (custom plans) and may then switch to a generic plan.
    `mode`: "custom" / "generic" force one (plan_cache_mode); "auto" executes the statement six
    times first and explains the seventh, i.e. the plan a long-lived server connection ends up
    with. With `diag_index`, that CREATE INDEX runs first in a transaction that is rolled back
    (a what-if, nothing is kept).
    """
    import asyncpg

    con = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        tr = con.transaction()
        await tr.start()
        try:
            if diag_index:
                await con.execute(diag_index)
            if mode != "auto":
                await con.execute(f"SET LOCAL plan_cache_mode = force_{mode}_plan")
            await con.execute(f"PREPARE bench_explain AS {sql}")
            args = ", ".join(_literal(v) for v in values)
            execute = f"EXECUTE bench_explain({args})" if values else "EXECUTE bench_explain"
            if mode == "auto":
                for _ in range(6):
                    await con.fetch(execute)
            rows = await con.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {execute}")
            await con.execute("DEALLOCATE bench_explain")
            return "\n".join(r[0] for r in rows)
        finally:
            await tr.rollback()
    finally:
        await con.close()


DIAG_INDEX = (
    "CREATE INDEX bench_diag_live_newest ON assets (organization_id, uploaded_at, id) "
    "WHERE deleted_at IS NULL"
)


async def pg_index_defs(url: str) -> dict[str, str]:
    """Index name -> "table (columns) [WHERE ...]" for assets and asset_tags."""
    import asyncpg

    con = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        rows = await con.fetch(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename IN ('assets', 'asset_tags') AND schemaname = 'public'"
        )
    finally:
        await con.close()
    out = {}
    for r in rows:
        m = re.search(r" ON (?:public\.)?(\w+) USING (\w+) (\(.*)$", r["indexdef"])
        out[r["indexname"]] = (
            f"{m.group(1)} {m.group(3)}" + (f" [{m.group(2)}]" if m.group(2) != "btree" else "")
            if m
            else r["indexdef"]
        )
    out["bench_diag_live_newest"] = "what-if: assets (organization_id, uploaded_at, id) WHERE ..."
    return out


INDEX_DEFS: dict[str, str] = {}


def plan_index_names(plan: str) -> list[str]:
    names = re.findall(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? "
                       r"(?:using|on) (\w+)", plan)  # fmt: skip
    return list(dict.fromkeys(names))


def plan_indexes(plan: str) -> list[str]:
    return [f"`{n}` {INDEX_DEFS.get(n, '')}".strip() for n in plan_index_names(plan)]


def index_kind(name: str) -> set[str]:
    """Which of the issue's wanted indexes `name` is: org+newest-first, tags, trigram."""
    d = INDEX_DEFS.get(name, "")
    kinds = set()
    if d.startswith("assets (organization_id") and "uploaded_at" in d:
        kinds.add("org + newest-first")
    if d.startswith("asset_tags (organization_id, tag"):
        kinds.add("tags")
    if "gin_trgm_ops" in d:
        kinds.add("trigram")
    if "INCLUDE" in d and "tag_bits" in d and "original_name_upper" in d:
        kinds.add("covering")  # what q, tags and type test (migration 0006)
    return kinds


def plan_time_ms(plan: str) -> float | None:
    m = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return float(m.group(1)) if m else None


def plan_top(plan: str) -> str:
    first = plan.splitlines()[0] if plan else ""
    return re.sub(r"\s+\(cost=.*", "", first).strip()


def is_generic(plan: str, values: list[Any]) -> bool:
    """Whether the plan was made without the parameter values. Every statement's first
    value is the organization id: a custom plan compares the column with that literal, a
    generic one with `$1`. (Looking for any `$n` misread custom plans: an InitPlan's result
    is shown as `$0` too.)"""
    return f"'{values[0]}'" not in plan


@dataclasses.dataclass
class Explained:
    title: str
    sql: str
    values: list[Any]
    custom: str
    generic: str
    auto: str  # after six executions: what a long-lived prepared statement gets
    diag: str = ""  # the page statement with DIAG_INDEX present (rolled back), when it sorts


def full_sort(plan: str) -> bool:
    """A Sort node (not Incremental Sort): every matching row is read before the first."""
    return bool(re.search(r"(?<!Incremental )\bSort  \(cost", plan))


def explain_all(pg: seeding.Seeded, filt: tuple[str, str, str]) -> list[Explained]:
    from pixelwand.services.assets import AssetFilter

    INDEX_DEFS.clear()
    INDEX_DEFS.update(asyncio.run(pg_index_defs(pg.database_url)))
    has_live_newest = any(
        d.startswith("assets (organization_id, uploaded_at") and "deleted_at IS NULL" in d
        for n, d in INDEX_DEFS.items()
        if n != "bench_diag_live_newest"
    )
    out = []
    tag, q, media = filt
    for title, f in (
        ("list page 1, pageSize 50 (no filter)", AssetFilter(page=1, page_size=50)),
        (
            f"filtered page: tags=[{tag!r}], q={q!r}, type={media}, pageSize 50",
            AssetFilter(q=q, type=media, tags=(tag,), page=1, page_size=50),
        ),
    ):
        stmts = asyncio.run(capture_service_sql(pg.database_url, pg.org_id, f))
        for i, (sql, values) in enumerate(stmts):
            what = "COUNT" if "COUNT(" in sql.upper() else "page"
            plans = {
                mode: asyncio.run(explain_pg(pg.database_url, sql, values, mode))
                for mode in ("custom", "generic", "auto")
            }
            diag = ""
            sorts = any(full_sort(p) for p in plans.values())
            if what == "page" and sorts and not has_live_newest and "(no filter)" in title:
                diag = asyncio.run(
                    explain_pg(pg.database_url, sql, values, "auto", diag_index=DIAG_INDEX)
                )
            out.append(
                Explained(
                    f"{title} — statement {i + 1} ({what})",
                    sql,
                    values,
                    plans["custom"],
                    plans["generic"],
                    plans["auto"],
                    diag,
                )
            )
    return out


def explain_sqlite(db_path: Path, statements: list[tuple[str, list[Any]]]) -> list[str]:
    con = sqlite3.connect(db_path)
    try:
        out = []
        for sql, values in statements:
            plan = con.execute(f"EXPLAIN QUERY PLAN {sql}", values).fetchall()
            out.append("; ".join(r[-1] for r in plan))
        return out
    finally:
        con.close()


# --- Directus --------------------------------------------------------------------------------


@dataclasses.dataclass
class DirectusFig:
    rps: float
    p50_ms: float
    p99_ms: float


def directus_reference() -> dict[str, DirectusFig]:
    text = (PEERS / "reference-RESULTS.md").read_text()
    labels = {
        "rest_50": "REST GET /files?limit=50&fields=(12)",
        "rest_200": "REST GET /files?limit=200&fields=(12)",
        "gql_50": "GraphQL POST /graphql/system files(limit: 50) {12 fields}",
        "gql_200": "GraphQL POST /graphql/system files(limit: 200) {12 fields}",
    }
    out = {}
    for key, label in labels.items():
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells and cells[0] == label:
                nums = [float(c.strip("*").replace(",", "")) for c in cells[1:6]]
                out[key] = DirectusFig(rps=nums[0], p50_ms=nums[1], p99_ms=nums[3])
    return out


def directus_from_json(path: Path) -> dict[str, DirectusFig]:
    data = json.loads(path.read_text())
    out = {}
    for key in ("rest_50", "rest_200", "gql_50", "gql_200"):
        w = data["wrk"][key]
        out[key] = DirectusFig(
            rps=float(w["rps"]), p50_ms=w["p50_us"] / 1000, p99_ms=w["p99_us"] / 1000
        )
    return out


def directus_figures(args: argparse.Namespace) -> tuple[dict[str, DirectusFig], str]:
    ref_note = (
        "reference figures from ../shared/peers/reference-RESULTS.md (section 3; a peer run "
        "on 2026-11-25 on a 2-vCPU KVM guest), NOT measured in this run"
    )
    if not args.directus:
        return directus_reference(), ref_note
    if PEERS_RESULTS.exists() and not args.directus_rerun:
        when = dt.datetime.fromtimestamp(PEERS_RESULTS.stat().st_mtime, dt.UTC)
        return directus_from_json(PEERS_RESULTS), (
            f"Directus peer run reused from {PEERS_RESULTS} ({when:%Y-%m-%d %H:%M} UTC, this "
            "machine, ../shared/peers/directus_bench.sh), not re-measured in this run"
        )
    log("running ../shared/peers/directus_bench.sh (installs Directus on first use: minutes)")
    proc = subprocess.run(
        ["bash", str(PEERS / "directus_bench.sh")], timeout=45 * 60, stdout=sys.stderr
    )
    if proc.returncode == 0 and PEERS_RESULTS.exists():
        return directus_from_json(PEERS_RESULTS), (
            "Directus measured in this run by ../shared/peers/directus_bench.sh "
            f"(results: {PEERS_RESULTS}), before the Pixel Wand rows"
        )
    log("directus_bench.sh failed: falling back to the reference figures")
    return directus_reference(), ref_note + " (the Directus run failed)"


# --- profile ---------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def _package(frame: str) -> str:
    m = _FRAME.match(frame)
    path = m.group("file") if m else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    for own in ("pixelwand", "schema", "compat_rest", "bench"):
        if f"/{own}/" in path or path.startswith(f"{own}/"):
            return own
    return "stdlib" if "python3" in path else path.split("/", 1)[0] or "?"


# Process entry frames (every sample has them): left out of the inclusive table.
_ENTRY_FRAMES = (
    "<module> ",
    "main (pixelwand/cli.py)",
    "cmd_serve ",
    "run (uvicorn/main.py)",
    "Server.run (uvicorn/server.py)",
    "asyncio_run (uvicorn/_compat.py)",
    "Runner.run (asyncio/runners.py)",
)


@dataclasses.dataclass
class Profile:
    samples: int
    self_top: list[tuple[str, int]]
    total_top: list[tuple[str, int]]
    packages: list[tuple[str, int]]
    raw_path: Path
    wrk: dict[str, Any] | None


def summarize_profile(raw: Path, wrk_res: dict[str, Any] | None, top: int = 18) -> Profile:
    self_c: Counter[str] = Counter()
    total_c: Counter[str] = Counter()
    pkg_c: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        samples += n
        leaf = frames[-1]
        self_c[_frame_name(leaf)] += n
        pkg_c[_package(leaf)] += n
        for name in {_frame_name(f) for f in frames}:
            if not name.startswith(_ENTRY_FRAMES):
                total_c[name] += n
    return Profile(
        samples=samples,
        self_top=self_c.most_common(top),
        total_top=total_c.most_common(top + 22),
        packages=pkg_c.most_common(12),
        raw_path=raw,
        wrk=wrk_res,
    )


def profile_row(
    pyspy: str, wrk: str, server: Server, row: Row, token: str, args: argparse.Namespace
) -> Profile | None:
    out = WORK / "profile-rest-list-200.txt"
    log(f"py-spy on pid {server.pid} during an extra (unmeasured) run of {row.key}")
    wrk_proc_res: dict[str, Any] = {}

    def load() -> None:
        wrk_proc_res.update(
            run_wrk(wrk, server.base, row.request, token, args.duration + 2, args.connections)
        )

    import threading

    t = threading.Thread(target=load)
    t.start()
    time.sleep(1.5)
    proc = subprocess.run(
        [
            *pin(1),
            pyspy,
            "record",
            "--pid",
            str(server.pid),
            "--duration",
            str(args.duration),
            "--rate",
            "200",
            "--nonblocking",
            "--full-filenames",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=args.duration + 60,
    )
    t.join(args.duration + 90)
    if proc.returncode != 0 or not out.exists():
        log(f"py-spy failed: {proc.stderr.strip()[-500:]}")
        return None
    return summarize_profile(out, wrk_proc_res or None)


# --- machine ---------------------------------------------------------------------------------


CODE_SEEN: dict[str, str] = {}  # server name -> product source digest when it started


def code_digest() -> str:
    """sha256 (12 hex) over pixelwand/, schema/, compat_rest/ sources: which code ran."""
    digest = hashlib.sha256()
    for sub in ("pixelwand", "schema", "compat_rest"):
        for p in sorted((ROOT / sub).rglob("*")):
            if p.is_file() and p.suffix in (".py", ".graphql"):
                digest.update(str(p.relative_to(ROOT)).encode())
                digest.update(p.read_bytes())
    return digest.hexdigest()[:12]


def machine(pg_version: str | None, wrk: str) -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        kb = int(f.readline().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    os_name = platform.system()
    with contextlib.suppress(OSError), open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"')
    wrk_v = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.splitlines()
    pkgs = []
    for p in (
        "uvicorn", "uvloop", "httptools", "starlette", "strawberry-graphql", "graphql-core",
        "tortoise-orm", "pypika-tortoise", "asyncpg", "aiosqlite", "orjson",
    ):  # fmt: skip
        try:
            pkgs.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            pkgs.append(f"{p} -")
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "pixelwand", "schema", "compat_rest"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    dirty = [line[3:] for line in dirty if line.strip()]
    code = f"git {head}"
    if dirty:
        code += f" + uncommitted changes in {len(dirty)} paths ({', '.join(dirty[:8])})"
    digests = sorted(set(CODE_SEEN.values()))
    code += f"; product source sha256 {', '.join(digests) or code_digest()}"
    if len(digests) > 1:
        code += " — **the product code changed during the run**: " + ", ".join(
            f"{k}: {d}" for k, d in CODE_SEEN.items()
        )
    return {
        "CPU": f"{NPROC} x {cpu}",
        "Memory": mem,
        "OS / kernel": f"{os_name} / {platform.release()}",
        "Python": platform.python_version(),
        "Packages": ", ".join(pkgs),
        "PostgreSQL": pg_version or "not used",
        "SQLite": sqlite3.sqlite_version,
        "wrk": wrk_v[0].split(" [")[0] if wrk_v else "?",
        "Code measured": code,
        "Pinning": (
            "server and baseline: CPU 0 (taskset -c 0); wrk and py-spy: CPU 1 (taskset -c 1); "
            "PostgreSQL not pinned"
            if PINNED
            else "none (fewer than 2 CPUs or no taskset)"
        ),
    }


# --- report ----------------------------------------------------------------------------------


def fmt(v: float | None, spec: str = ".1f", none: str = "—") -> str:
    return none if v is None else format(v, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


@dataclasses.dataclass
class Verdict:
    row: Row
    checks: list[tuple[str, bool | None, str]]  # (target, met?, figures)

    def cell(self) -> str:
        if not self.row.ok:
            return self.row.status.split(":")[0]
        if not self.checks:
            return "(baseline)" if self.row.server == "baseline" else "—"
        missed = [t for t, ok, _ in self.checks if ok is False]
        unknown = [t for t, ok, _ in self.checks if ok is None]
        if missed:
            return "MISSED: " + "; ".join(missed)
        return "met" + (f" (not checked: {'; '.join(unknown)})" if unknown else "")


BASELINE_OF = {  # product shape -> baseline row keys (ORM, raw)
    "list50": ("base-list-50", "raw-list-50"),
    "list200": ("base-list-200", "raw-list-200"),
    "get": ("base-get", "raw-get"),
    "pg-list50": ("pg-base-list-50", "pg-raw-list-50"),
    "pg-filtered": ("pg-base-filtered", "pg-raw-filtered"),
    "pg-get": ("pg-base-get", "pg-raw-get"),
}
DIRECTUS_OF = {
    ("rest", "list50"): "rest_50",
    ("rest", "list200"): "rest_200",
    ("gql", "list50"): "gql_50",
    ("gql", "list200"): "gql_200",
    ("pq", "list50"): "gql_50",
    ("pq", "list200"): "gql_200",
}
LIST_SHAPES = ("list50", "list200", "pg-list50", "pg-filtered")


def verdicts(rows: list[Row], directus: dict[str, DirectusFig]) -> dict[str, Verdict]:
    by = {r.key: r for r in rows}
    out = {}
    for r in rows:
        checks: list[tuple[str, bool | None, str]] = []
        if r.server == "product" and r.ok:
            d = DIRECTUS_OF.get((r.kind, r.shape))
            if r.kind in ("rest", "pq", "gql") and r.shape in ("list50", "list200", "get"):
                need = T_DIRECTUS_ADHOC if r.kind == "gql" else T_DIRECTUS_FAST
                if d and d in directus:
                    x = r.rps / directus[d].rps  # type: ignore[operator]
                    checks.append(
                        (
                            f"≥{need:g}x Directus",
                            x >= need,
                            f"{r.rps:.1f} / {directus[d].rps:.1f} = {x:.3f}x",
                        )
                    )
                else:
                    checks.append(
                        (
                            f"≥{need:g}x Directus",
                            None,
                            "no Directus get-by-id figure in the peer run",
                        )
                    )
            base_keys = BASELINE_OF.get(r.shape)
            for key, name in zip(base_keys or (), ("ORM", "raw-SQL"), strict=False):
                b = by.get(key)
                x = ratio(r.rps, b.rps if b else None)
                checks.append(
                    (
                        f"≥{T_BASELINE:g}x {name} baseline",
                        None if x is None else x >= T_BASELINE,
                        f"{r.rps:.1f} / {fmt(b.rps if b else None)} = {fmt(x, '.3f')}x",
                    )
                )
            if r.kind == "rest" and r.shape in BASELINE_OF:
                gq = [
                    g
                    for g in rows
                    if g.shape == r.shape
                    and g.kind in ("gql", "pq")
                    and g.server == "product"
                    and g.ok
                ]
                if gq:
                    best = max(gq, key=lambda g: g.rps or 0)
                    x = r.rps / best.rps  # type: ignore[operator]
                    bound = ""
                    if max(r.cpu.get("server", 100), best.cpu.get("server", 100)) < 60:
                        bound = (
                            " (neither server was CPU-bound: the database was, so this ratio "
                            "shows database run-to-run variation more than the shim's cost)"
                        )
                    checks.append(
                        (
                            f"REST ≥{T_REST_VS_GQL:g}x direct GraphQL",
                            x >= T_REST_VS_GQL,
                            f"{r.rps:.1f} / {best.rps:.1f} ({best.kind}) = {x:.3f}x{bound}",
                        )
                    )
            if r.kind == "export":
                p50 = r.ms("p50_us")
                checks.append(
                    (f"p50 ≤ {T_EXPORT_P50_MS:g} ms", p50 <= T_EXPORT_P50_MS, f"p50 {p50:.2f} ms")  # type: ignore[operator]
                )
            if r.shape == "pg-filtered":
                p50 = r.ms("p50_us")
                checks.append(
                    (
                        f"p50 ≤ {T_FILTERED_P50_MS:g} ms",
                        p50 <= T_FILTERED_P50_MS,  # type: ignore[operator]
                        f"p50 {p50:.2f} ms",
                    )
                )
            if r.shape in LIST_SHAPES and r.rss_mb is not None:
                checks.append(
                    (f"RSS ≤ {T_RSS_MB:g} MB", r.rss_mb <= T_RSS_MB, f"{r.rss_mb:.1f} MB")
                )
        out[r.key] = Verdict(r, checks)
    return out


def rest_gql_cell(r: Row, rows: list[Row]) -> str:
    if r.kind != "rest" or not r.ok:
        return ""
    parts = []
    for kind, name in (("gql", "ad-hoc"), ("pq", "PQ")):
        g = next((g for g in rows if g.shape == r.shape and g.kind == kind and g.ok), None)
        if g is not None:
            parts.append(f"{r.rps / g.rps:.2f} vs {name}")  # type: ignore[operator]
    return ", ".join(parts)


def table(rows: list[Row], directus: dict[str, DirectusFig], v: dict[str, Verdict]) -> str:
    by = {r.key: r for r in rows}
    head = (
        "| row | req/s | rounds req/s | p50 ms | p99 ms | server RSS MB | x baseline "
        "| x raw SQL | x Directus | REST/GraphQL | CPU % server / other | targets |\n"
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---|\n"
    )
    lines = []
    group = None
    for r in rows:
        if r.group != group:
            group = r.group
            lines.append(f"| **{group}** | | | | | | | | | | | |")
        base = raw = dx = None
        if r.server == "product" and r.shape in BASELINE_OF:
            b, w = (by.get(k) for k in BASELINE_OF[r.shape])
            base = ratio(r.rps, b.rps if b else None)
            raw = ratio(r.rps, w.rps if w else None)
        d = DIRECTUS_OF.get((r.kind, r.shape))
        if d and d in directus:
            dx = ratio(r.rps, directus[d].rps)
        label = r.label if r.ok else f"{r.label} — {r.status}"
        lines.append(
            f"| {label} | {fmt(r.rps)} | {rounds_cell(r)} | {fmt(r.ms('p50_us'), '.2f')} | "
            f"{fmt(r.ms('p99_us'), '.2f')} | {fmt(r.rss_mb)} | {fmt(base, '.2f')} | "
            f"{fmt(raw, '.2f')} | {fmt(dx, '.2f')} | {rest_gql_cell(r, rows)} | "
            f"{cpu_cell(r)} | {v[r.key].cell()} |"
        )
    return head + "\n".join(lines) + "\n"


def rounds_cell(r: Row) -> str:
    return " / ".join(f"{res['rps']:.0f}" for res, _, _ in r.rounds)


def cpu_cell(r: Row) -> str:
    if not r.cpu:
        return ""
    return f"{r.cpu['server']:.0f} / {r.cpu['other']:.0f}"


def directus_table(directus: dict[str, DirectusFig]) -> str:
    names = {
        "rest_50": "REST GET /files?limit=50 (12 fields)",
        "rest_200": "REST GET /files?limit=200 (12 fields)",
        "gql_50": "GraphQL files(limit: 50) {12 fields}",
        "gql_200": "GraphQL files(limit: 200) {12 fields}",
    }
    out = "| Directus row | req/s | p50 ms | p99 ms |\n|---|---:|---:|---:|\n"
    for k, name in names.items():
        if k in directus:
            d = directus[k]
            out += f"| {name} | {d.rps:.1f} | {d.p50_ms:.1f} | {d.p99_ms:.1f} |\n"
    return out


def targets_list(v: dict[str, Verdict]) -> str:
    lines = []
    for verdict in v.values():
        r = verdict.row
        if r.server != "product":
            continue
        if not r.ok:
            lines.append(f"- [{r.group}] **{r.label}**: {r.status}")
            continue
        where = "SQLite" if r.group.startswith("SQLite") else "PostgreSQL 100k"
        for target, ok, figures in verdict.checks:
            mark = "✅" if ok else ("❌" if ok is False else "—")
            lines.append(f"- {mark} [{where}] **{r.label}** — {target}: {figures}")
    return "\n".join(lines) + "\n"


def profile_md(p: Profile | None, row: Row | None) -> str:
    if p is None:
        return "No profile (py-spy unavailable or failed).\n"
    wrk_line = ""
    if p.wrk:
        wrk_line = (
            f" Under py-spy (`--nonblocking`, 200 Hz) the row ran at {p.wrk['rps']:.0f} req/s "
            f"(measured row: {fmt(row.rps if row else None, '.0f')} req/s)."
        )
    out = (
        f"py-spy {version_or('py-spy')} `record --rate 200 --nonblocking --format raw` for "
        f"{p.samples} samples on the server process during an extra, unmeasured run of "
        f"REST list pageSize=200 (SQLite).{wrk_line} Idle samples (the event loop waiting in "
        f"epoll) are excluded, so the shares are of CPU time in the process (all threads: the "
        f"event loop and aiosqlite's connection thread). Self time of `Runner.run "
        f"(asyncio/runners.py)` is time inside uvloop's C loop (socket I/O, callbacks) with "
        f"no Python frame above it. The inclusive table leaves out the process entry frames "
        f"(cli → uvicorn → Runner.run), present in every event-loop sample. Raw collapsed "
        f"stacks: `{p.raw_path}` (open in speedscope.app).\n\n"
    )
    out += "Self time by package (leaf frame):\n\n| package | samples | share |\n|---|---:|---:|\n"
    for name, n in p.packages:
        out += f"| {name} | {n} | {100 * n / max(1, p.samples):.1f}% |\n"
    out += "\nTop functions by self time:\n\n| function | self | share |\n|---|---:|---:|\n"
    for name, n in p.self_top:
        out += f"| `{name}` | {n} | {100 * n / max(1, p.samples):.1f}% |\n"
    out += "\nTop functions by total time (inclusive):\n\n"
    out += "| function | total | share |\n|---|---:|---:|\n"
    for name, n in p.total_top:
        out += f"| `{name}` | {n} | {100 * n / max(1, p.samples):.1f}% |\n"
    return out


def version_or(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "?"


def explain_md(items: list[Explained], sqlite_plans: list[tuple[str, str]]) -> str:
    if not items:
        return "PostgreSQL rows not run: no plans.\n"
    out = "<details><summary>SQL and full plans</summary>\n\n"
    for e in items:
        out += f"{e.title}\n\n```sql\n{e.sql}\n-- parameters: {e.values}\n```\n\n"
        out += f"Custom plan (parameters known):\n\n```\n{e.custom}\n```\n\n"
        out += (
            f"Generic plan (`plan_cache_mode = force_generic_plan`):\n\n```\n{e.generic}\n```\n\n"
        )
        out += f"After six executions (plan_cache_mode auto):\n\n```\n{e.auto}\n```\n\n"
        if e.diag:
            out += f"What-if, with `{DIAG_INDEX}` (rolled back):\n\n```\n{e.diag}\n```\n\n"
    out += "</details>\n\n"
    if sqlite_plans:
        out += "SQLite (`EXPLAIN QUERY PLAN`, list page 1 pageSize 50):\n\n"
        for sql, plan in sqlite_plans:
            what = "COUNT" if "COUNT(" in sql.upper() else "page"
            out += f"- {what}: `{plan}`\n"
        out += "\n"
    return out


def _plan_summary(plan: str) -> str:
    used = plan_indexes(plan)
    bits = [f"`{plan_top(plan)}`", f"{fmt(plan_time_ms(plan), '.2f')} ms"]
    bits.append("indexes: " + ("; ".join(used) if used else "none"))
    if "Seq Scan on assets" in plan or "Seq Scan on asset_tags" in plan:
        bits.append("**sequential scan**")
    if full_sort(plan):
        m = re.search(r"Sort Key: ([^\n]+)", plan)
        bits.append(f"**sorts every matching row** ({m.group(1) if m else '?'})")
    if "Parallel" in plan:
        bits.append("parallel workers")
    return ", ".join(bits)


def explain_findings(items: list[Explained]) -> str:
    """Per statement: the plans' top node, time, indexes used, and what is missing."""
    if not items:
        return ""
    lines = []
    for e in items:
        lines.append(f"- **{e.title}**")
        lines.append(f"  - custom plan: {_plan_summary(e.custom)}")
        lines.append(f"  - generic plan: {_plan_summary(e.generic)}")
        kind = "generic" if is_generic(e.auto, e.values) else "custom"
        lines.append(
            f"  - after six executions (what the server's prepared statement uses): the "
            f"**{kind}** plan, {fmt(plan_time_ms(e.auto), '.2f')} ms"
        )
        used: set[str] = set()
        for n in plan_index_names(e.auto):
            used |= index_kind(n)
        wanted = ["org + newest-first"]
        if "filtered" in e.title:
            # the page: newest first on the index that covers q/tags/type (migration 0006);
            # its COUNT: the trigram indexes for q
            wanted = ["org + newest-first", "covering"] if "(page)" in e.title else ["trigram"]
        missing = [k for k in wanted if k not in used]
        lines.append(
            "  - wanted indexes ("
            + ", ".join(wanted)
            + "): "
            + ("all used" if not missing else f"not used: {', '.join(missing)}")
        )
        if e.diag:
            lines.append(
                f"  - diagnosis: with `{DIAG_INDEX}` (created in a transaction, rolled back): "
                f"{_plan_summary(e.diag)}"
            )
    return "\n".join(lines) + "\n"


def write_doc(path: Path, section: str) -> None:
    """Replace this section of `path` (or append it); every other section is kept as is."""
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    for _ in range(3):
        before = path.read_text() if path.exists() else "# Benchmarks\n"
        if pattern.search(before):
            text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", before, count=1)
        else:
            text = before.rstrip("\n") + "\n\n" + section
        now = path.read_text() if path.exists() else "# Benchmarks\n"
        if now != before:  # changed under us: read it again
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.rstrip("\n") + "\n")
        return
    raise RuntimeError(f"{path} keeps changing; section not written")


# --- main ------------------------------------------------------------------------------------


def rest_list(page_size: int, **filters: str) -> Request:
    qs = "&".join(f"{k}={v}" for k, v in filters.items())
    return Request("GET", f"/api/v1/assets?page=1&pageSize={page_size}" + (f"&{qs}" if qs else ""))


def base_list(prefix: str, page_size: int, **filters: str) -> Request:
    req = rest_list(page_size, **filters)
    req.url = req.url.replace("/api/v1", prefix, 1)
    return req


def gql(query: str, variables: dict[str, Any], field: str, persisted: bool) -> Request:
    if persisted:
        return Request(
            "POST",
            "/graphql",
            apq_body(query, variables, with_query=False),
            graphql_field=field,
            apq=(query, variables),
        )
    return Request(
        "POST", "/graphql", {"query": query, "variables": variables}, graphql_field=field
    )


def list_rows(
    group: str, prefix: str, shape: str, name: str, size: int, n: int, **f: str
) -> list[Row]:
    """Keys: <prefix><kind>-<name>, e.g. pg-rest-filtered (BASELINE_OF refers to them)."""
    query = operation_text("list_assets")
    variables: dict[str, Any] = {"page": 1, "pageSize": size}
    what = f"pageSize {size}"
    if f:
        variables.update(q=f["q"], type=f["type"], tags=[f["tags"]])
        what = f"filtered (tags={f['tags']}, q={f['q']}, type={f['type']}), pageSize {size}"
    return [
        Row(f"{prefix}rest-{name}", f"REST list {what}", group, "rest", shape, "product",
            rest_list(size, **f), n),
        Row(f"{prefix}base-{name}", f"baseline (Tortoise ORM) list {what}", group, "base",
            shape, "baseline", base_list("/api/v1", size, **f), n),
        Row(f"{prefix}raw-{name}", f"baseline (raw SQL) list {what}", group, "raw", shape,
            "baseline", base_list("/raw/v1", size, **f), n),
        Row(f"{prefix}gql-{name}", f"GraphQL ad-hoc `assets` {what}", group, "gql", shape,
            "product", gql(query, variables, "assets", False), n),
        Row(f"{prefix}pq-{name}", f"GraphQL persisted `assets` {what}", group, "pq", shape,
            "product", gql(query, variables, "assets", True), n),
    ]  # fmt: skip


def get_rows(group: str, prefix: str, shape: str, asset_id: str) -> list[Row]:
    query = operation_text("get_asset")
    v = {"id": asset_id}
    return [
        Row(f"{prefix}rest-get", "REST get-by-id", group, "rest", shape, "product",
            Request("GET", f"/api/v1/assets/{asset_id}")),
        Row(f"{prefix}base-get", "baseline (Tortoise ORM) get-by-id", group, "base", shape,
            "baseline", Request("GET", f"/api/v1/assets/{asset_id}")),
        Row(f"{prefix}raw-get", "baseline (raw SQL) get-by-id", group, "raw", shape, "baseline",
            Request("GET", f"/raw/v1/assets/{asset_id}")),
        Row(f"{prefix}gql-get", "GraphQL ad-hoc `asset(id)`", group, "gql", shape, "product",
            gql(query, v, "asset", False)),
        Row(f"{prefix}pq-get", "GraphQL persisted `asset(id)`", group, "pq", shape, "product",
            gql(query, v, "asset", True)),
    ]  # fmt: skip


def run_group(
    rows: list[Row],
    product: Server,
    baseline: Server,
    token: str,
    wrk: str,
    args: argparse.Namespace,
) -> None:
    servers = {"product": product, "baseline": baseline}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    clients = {
        name: httpx.Client(base_url=s.base, headers=headers, timeout=60)
        for name, s in servers.items()
    }
    try:
        # Group warm-up: every request under load (3 s each), so the first rows do not pay
        # for cold caches (PostgreSQL buffers and plans, the server's first requests, the
        # heap growing to its working size). With 1 s, the first row of each page size ran
        # 10-25% below the same data's later rows.
        for r in rows:
            with contextlib.suppress(CheckFailed, NotSupported, httpx.HTTPError):
                check_request(clients[r.server], r.request)
            run_wrk(wrk, servers[r.server].base, r.request, token, 3, args.connections)
        reference: dict[str, Row] = {}
        for r in rows:
            ref = reference.get(r.shape) if r.kind != "rest" else None
            check_row(r, clients[r.server], ref)
            if r.kind == "rest" and r.answer is not None:
                reference[r.shape] = r
        # Rounds: every checked row once per round, rows interleaved, so that a slow minute
        # of the machine (a shared host: the same request ran ±10% from one minute to the
        # next) lands on one round of several rows instead of on one row's only figure.
        for _ in range(args.rounds):
            for r in rows:
                if r.status == "checked":
                    run_round(r, servers[r.server], token, wrk, args)
        for r in rows:
            settle(r)
    finally:
        for c in clients.values():
            c.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--directus",
        action="store_true",
        default=os.environ.get("BENCH_DIRECTUS") == "1",
        help="compare with Directus measured by ../shared/peers/directus_bench.sh "
        "(reuses /tmp/peers/results/directus.json when present)",
    )
    ap.add_argument("--directus-rerun", action="store_true", help="with --directus: run it again")
    ap.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", seeding.DEFAULT_PG_URL))
    ap.add_argument("--reseed", action="store_true", help="drop and re-seed the PostgreSQL db")
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument("--duration", type=int, default=10, help="measured wrk seconds per row")
    ap.add_argument("--warmup", type=int, default=2, help="wrk warm-up seconds per row")
    ap.add_argument(
        "--rounds", type=int, default=3, help="measured runs per row (the median is reported)"
    )
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument(
        "--wait-quiet",
        type=int,
        default=0,
        metavar="SECONDS",
        help="first wait up to SECONDS for other processes to use < 25%% of a core",
    )
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--json", type=Path, default=WORK / "results.json")
    args = ap.parse_args()

    wait_quiet(args.wait_quiet)
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    if load_start[0] > 0.7:
        log(f"warning: load average {load_start[0]:.2f} before the run: other work is running")
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    WORK.mkdir(parents=True, exist_ok=True)
    if PINNED:  # this process (checks, seeding) stays off the server's CPU
        os.sched_setaffinity(0, {1})
    wrk = ensure_wrk()
    pyspy = None if args.no_profile else ensure_pyspy()
    directus, directus_note = directus_figures(args)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    log(f"work dir {run_dir}")

    rows: list[Row] = []
    servers: list[Server] = []
    seeded_info: list[seeding.Seeded] = []
    prof: Profile | None = None
    explained: list[Explained] = []
    sqlite_plans: list[tuple[str, str]] = []
    pg_version = None
    filt: tuple[str, str, str] | None = None
    notes: list[str] = []
    try:
        # ---- SQLite, 200 seeded assets + 1 uploaded image
        sq_dir = run_dir / "sqlite"
        log("seeding SQLite (200 assets)")
        sq = seeding.seed_sqlite(sq_dir)
        seeded_info.append(sq)
        product = product_server("pixelwand-sqlite", sq, sq_dir, run_dir)
        baseline = baseline_server("baseline-sqlite", sq, run_dir)
        servers += [product, baseline]
        product.start()
        baseline.start()
        log(f"servers up: product pid {product.pid} {product.base}, baseline pid {baseline.pid}")
        with httpx.Client(
            base_url=product.base, headers={"Authorization": f"Bearer {sq.key}"}, timeout=120
        ) as c:
            img = run_dir / "bench-photo.jpg"
            make_jpeg(img)
            photo_id = upload(c, img)
            export_url = (
                f"/api/v1/assets/{photo_id}/export-url?format=webp&maxWidth=800&maxHeight=800"
                "&quality=85"
            )
            first = c.get(export_url)
            first.raise_for_status()
            second = c.get(export_url).json()
            if not second.get("cached"):
                notes.append(f"export-url second call not cached: {second}")
            listing = c.get("/api/v1/assets?page=1&pageSize=1").json()
        total = listing["total"]
        get_id = listing["items"][0]["id"]
        group = f"SQLite, {total} assets (one organization)"
        sq_rows = (
            list_rows(group, "", "list50", "list-50", 50, 50)
            + list_rows(group, "", "list200", "list-200", 200, 200)
            + get_rows(group, "", "get", get_id)
        )
        export_row = Row(
            "rest-export-url",
            "REST export-url, cached rendition (webp, fit 800x800, q85)",
            group,
            "export",
            "export",
            "product",
            Request("GET", export_url),
        )
        sq_rows.append(export_row)
        rows += sq_rows
        run_group(sq_rows, product, baseline, sq.key, wrk, args)

        # SQLite plan of the list query (the SQL the service sends)
        from pixelwand.services.assets import AssetFilter

        stmts = asyncio.run(
            capture_service_sql(sq.database_url, sq.org_id, AssetFilter(page=1, page_size=50))
        )
        sqlite_plans = list(
            zip([s for s, _ in stmts], explain_sqlite(sq_dir / "pixelwand.db", stmts), strict=True)
        )

        if pyspy:
            row200 = next(r for r in sq_rows if r.key == "rest-list-200")
            reset_peak_rss(product.pid)
            prof = profile_row(pyspy, wrk, product, row200, sq.key, args)
        product.stop()
        baseline.stop()

        # ---- PostgreSQL, 100k assets in one organization among five
        if not args.skip_postgres:
            try:
                log("seeding PostgreSQL (reused when already seeded)")
                pg = seeding.seed_postgres(args.pg_url, run_dir / "pg", reseed=args.reseed)
            except Exception as exc:  # no server, no rights: say so, keep the SQLite rows
                notes.append(f"PostgreSQL rows not run: {exc}")
                log(notes[-1])
                pg = None
            if pg is not None:
                seeded_info.append(pg)
                log(
                    f"PostgreSQL: {'reused' if pg.reused else 'seeded'} in {pg.seconds:.1f} s "
                    f"({pg.total_assets} assets, {pg.tag_rows} tag rows)"
                )
                pg_version = asyncio.run(_pg_version(pg.database_url))
                product = product_server("pixelwand-pg", pg, run_dir / "pg", run_dir)
                baseline = baseline_server("baseline-pg", pg, run_dir)
                servers += [product, baseline]
                product.start()
                baseline.start()
                # seeding and migrating wake autovacuum: let it finish before measuring
                wait_quiet(args.wait_quiet)
                with httpx.Client(
                    base_url=product.base,
                    headers={"Authorization": f"Bearer {pg.key}"},
                    timeout=60,
                ) as c:
                    for tag, q, media in FILTER_CANDIDATES:
                        page = c.get(
                            f"/api/v1/assets?page=1&pageSize=50&tags={tag}&q={q}&type={media}"
                        ).json()
                        if len(page.get("items", [])) == 50:
                            filt = (tag, q, media)
                            filt_total = page["total"]
                            break
                    pg_get_id = c.get("/api/v1/assets?page=1&pageSize=1").json()["items"][0]["id"]
                if filt is None:
                    raise RuntimeError("no filter candidate gives a full page on PostgreSQL")
                pg_group = (
                    f"PostgreSQL, {pg.live_assets:,} live assets in the organization "
                    f"({pg.total_assets:,} rows in {pg.organizations} organizations)"
                )
                tag, q, media = filt
                pg_rows = (
                    list_rows(pg_group, "pg-", "pg-list50", "list-50", 50, 50)
                    + list_rows(
                        pg_group,
                        "pg-",
                        "pg-filtered",
                        "filtered",
                        50,
                        50,
                        tags=tag,
                        q=q,
                        type=media,
                    )
                    + get_rows(pg_group, "pg-", "pg-get", pg_get_id)
                )
                for r in pg_rows:
                    if r.shape == "pg-filtered":
                        r.label += f" — {filt_total:,} matches"
                rows += pg_rows
                run_group(pg_rows, product, baseline, pg.key, wrk, args)
                product.stop()
                baseline.stop()
                log("EXPLAIN (ANALYZE, BUFFERS) of the service's SQL")
                explained = explain_all(pg, filt)
    finally:
        for s in servers:
            s.stop()

    elapsed = time.perf_counter() - t_start
    notes.insert(0, contention_note(rows, load_start, os.getloadavg()))
    v = verdicts(rows, directus)
    info = machine(pg_version, wrk)
    tbl = table(rows, directus, v)
    print()
    print(tbl)
    print(targets_list(v))
    if prof:
        print(profile_md(prof, next((r for r in rows if r.key == "rest-list-200"), None)))
    print(explain_findings(explained))

    section = build_section(
        when, elapsed, info, seeded_info, rows, tbl, v, directus, directus_note, prof,
        explained, sqlite_plans, filt, notes, args,
    )  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "when": when,
                "elapsed_s": elapsed,
                "machine": info,
                "directus": {k: dataclasses.asdict(d) for k, d in directus.items()},
                "directus_source": directus_note,
                "rows": [
                    {
                        "key": r.key,
                        "label": r.label,
                        "group": r.group,
                        "status": r.status,
                        "wrk": r.wrk,
                        "rounds": [res for res, _, _ in r.rounds],
                        "rss_kb": r.rss_kb,
                        "note": r.note,
                        "bytes_per_response": r.bytes_per_response,
                        "ratelimit": r.ratelimit,
                    }
                    for r in rows
                ],
            },
            indent=1,
        )
    )
    if not args.no_doc:
        write_doc(args.doc, section)
        log(f"wrote {args.doc} ({SECTION})")
    log(f"done in {elapsed:.0f} s; raw results {args.json}")
    return 0


def machine_busy_pct(seconds: float = 2.0) -> float:
    """CPU used by every process over `seconds`, in % of one core."""

    def busy() -> float:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return (sum(fields) - fields[3] - fields[4]) / _HZ

    a, t0 = busy(), time.monotonic()
    time.sleep(seconds)
    return 100 * (busy() - a) / (time.monotonic() - t0)


def wait_quiet(limit_s: int) -> None:
    if limit_s <= 0:
        return
    deadline = time.monotonic() + limit_s
    while True:
        pct = machine_busy_pct()
        if pct < 25:
            log(f"machine quiet: {pct:.0f}% of a core busy")
            return
        if time.monotonic() > deadline:
            log(f"machine still busy after {limit_s} s ({pct:.0f}% of a core): running anyway")
            return
        log(f"waiting for a quiet machine: {pct:.0f}% of a core busy")
        time.sleep(8)


def contention_note(rows: list[Row], start: tuple, end: tuple) -> str:
    """How much CPU other processes took while the rows ran (not the server, not wrk)."""
    sq = [r.cpu["other"] for r in rows if r.cpu and r.group.startswith("SQLite")]
    pg = [r.cpu["other"] for r in rows if r.cpu and not r.group.startswith("SQLite")]
    text = (
        f"Machine load: load average {start[0]:.2f} at the start, {end[0]:.2f} at the end. "
        f"CPU taken by everything other than the measured server and wrk during the measured "
        f"runs (% of one core; the machine has {NPROC}):"
    )
    if sq:
        text += f" SQLite rows median {statistics.median(sq):.0f}%, max {max(sq):.0f}%;"
    if pg:
        text += (
            f" PostgreSQL rows median {statistics.median(pg):.0f}%, max {max(pg):.0f}% "
            "(this includes PostgreSQL itself)."
        )
    if sq and max(sq) > 20:
        text += (
            " **The machine was not quiet during some SQLite rows (other processes used more "
            "than 20% of a core): those rows' figures are lower than on an idle machine.**"
        )
    return text


async def _pg_version(url: str) -> str:
    import asyncpg

    con = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        return str(await con.fetchval("SHOW server_version"))
    finally:
        await con.close()


def build_section(
    when: str,
    elapsed: float,
    info: dict[str, str],
    seeded: list[seeding.Seeded],
    rows: list[Row],
    tbl: str,
    v: dict[str, Verdict],
    directus: dict[str, DirectusFig],
    directus_note: str,
    prof: Profile | None,
    explained: list[Explained],
    sqlite_plans: list[tuple[str, str]],
    filt: tuple[str, str, str] | None,
    notes: list[str],
    args: argparse.Namespace,
) -> str:
    s = f"{SECTION}\n\n"
    s += (
        f"Generated by `make bench-api` (`bench/bench_api.py`) on {when}; the run took "
        f"{elapsed / 60:.1f} min. One run, one machine; all Pixel Wand and baseline figures are "
        f"from this run. Directus: {directus_note}.\n\n"
    )
    s += "### Machine and versions\n\n| | |\n|---|---|\n"
    for k, val in info.items():
        s += f"| {k} | {val} |\n"
    s += "\n### Method\n\n"
    s += (
        f"- Servers: `pixelwand serve --port <free> --no-migrate` (uvicorn, uvloop, httptools, "
        f"one process, default log level, no access log, in-process rate limiter) and the "
        f"hand-written baseline `bench/api_baseline.py` (same uvicorn settings), both pinned "
        f"to CPU 0. `PIXELWAND_PLAN_TEAM|BUSINESS|ENTERPRISE_RPS={RPS}`: the limiter runs "
        f"on every request (checked: `RateLimit-Limit: "
        f"{next((r.ratelimit for r in rows if r.ratelimit), '?')}` on the product's answers) "
        f"but refuses none.\n"
        f"- Load: wrk -t1 -c{args.connections}, pinned to CPU 1; per server group first 3 s of "
        f"wrk on every row's request (cold caches), then {args.rounds} rounds: in each round "
        f"every row in turn, {args.warmup} s warm-up and {args.duration} s measured. A row's "
        f"figures are its median round by req/s (that round's percentiles and CPU; the "
        f"`rounds req/s` column lists every round, in order), its RSS the peak over rounds. "
        f"`bench/wrk/json.lua` (percentiles from wrk's "
        f'histogram; non-2xx and `{{"errors":…}}` GraphQL answers counted). A row with any '
        f"non-2xx, GraphQL error or socket error is INVALID. Before each row one request is "
        f"checked: status, item count, and for GraphQL and baseline rows that the data equals "
        f"the REST answer for the same page.\n"
        f"- Server RSS: VmHWM of the server process, reset through /proc/PID/clear_refs before "
        f"the warm-up and read after the measured run (peak during that row).\n"
        f"- GraphQL rows select the REST operation's fields (`compat_rest/operations/"
        f"list_assets.graphql` / `get_asset.graphql` with the `RestAsset` fragment: 14 asset "
        f"fields + page, pageSize, total, totalPages), as an ad-hoc query (`{{query, "
        f"variables}}`) and as a persisted query (Apollo APQ, hash only; registered once "
        f"during the checked request).\n"
        f"- Baseline (a): `bench/api_baseline.py`, a bare Starlette app: Bearer key → SHA-256 → "
        f"`api_keys` (1 s cache, like the product), then the service's COUNT + page query "
        f"through **Tortoise ORM querysets** (same filters, columns, ordering, org filter), "
        f"orjson, the same JSON (checked per row; whether the body bytes are identical to the "
        f"REST answer is in the Notes). `x baseline` is against it. The `raw SQL` rows run the "
        f"same two statements as SQL text through Tortoise's connection (`execute_query`: "
        f"aiosqlite / asyncpg), no queryset building or row conversion — `x raw SQL`. "
        f"The 0.67x target is checked against both: the ORM one is what a hand-written "
        f"Tortoise endpoint does, the raw-SQL one is the practical limit of this stack.\n"
        f"- Totals: the product answers the exact `total` from memory while the organization's "
        f"write generation is unchanged (docs/architecture.md, Listing totals), and a page "
        f"shorter than pageSize needs no COUNT; the baselines run the COUNT on every request, "
        f"as a plain hand-written endpoint does. The list rows here measure that steady state "
        f"(nothing is written during a run); the first request after any write to the "
        f"organization pays the COUNT once (its plan and time are in the PostgreSQL plans "
        f"below).\n"
        f"- Directus (c): `x Directus` compares with Directus' REST rows for REST, its GraphQL "
        f"rows for GraphQL, same page size; Directus has no get-by-id or 100k figures.\n"
        f"- REST/GraphQL (b): the REST shim's req/s over direct GraphQL's (ad-hoc and "
        f"persisted) for the same data; the target uses the faster GraphQL variant.\n"
    )
    s += "\n### Data\n\n"
    for sd in seeded:
        if sd.backend == "sqlite":
            s += (
                f"- SQLite: {sd.live_assets} seeded assets ({sd.tag_rows} tag rows) in one "
                f"ENTERPRISE organization + 1 JPEG uploaded through presign/PUT/finalize for "
                f"the export-url row (Directus' run has 200 + 1 files); seeded in "
                f"{sd.seconds:.1f} s.\n"
            )
        else:
            s += (
                f"- PostgreSQL: {sd.live_assets:,} live assets"
                + (f" (+ {sd.deleted_assets:,} soft-deleted)" if sd.deleted_assets else "")
                + f" in the measured organization, {sd.total_assets:,} asset rows and "
                f"{sd.tag_rows:,} `asset_tags` rows in {sd.organizations} organizations "
                f"({'reused seed' if sd.reused else 'seeded with COPY'} in {sd.seconds:.1f} s; "
                f"VACUUM ANALYZE after the load).\n"
            )
    s += (
        "- Rows from `bench/seed.py` (seeded RNG): camera/phone/export-style file names, "
        "JPEG/PNG/WEBP/GIF images with real pixel sizes and MP4/MOV videos, log-normal sizes, "
        "uploads over three years, 0-5 tags per asset (subject + Zipf-weighted workflow tags), "
        "a third of them in collections.\n"
    )
    if filt:
        s += f"- Filtered page: `tags={filt[0]}&q={filt[1]}&type={filt[2]}&pageSize=50`.\n"
    s += "\n### Results\n\n" + tbl + "\n"
    s += (
        "`x baseline` / `x raw SQL`: the row's req/s over the hand-written baseline's for the "
        "same request (Tortoise ORM / raw SQL). `x Directus`: over Directus' req/s for the "
        "same kind of request and page size. `CPU % server / other`: during the measured run, "
        "the server process's CPU time (% of one core: ~100 means the server, pinned to one "
        "core, is the bottleneck) and the CPU time of everything except the server and wrk "
        "(other processes on the machine; on PostgreSQL rows this includes PostgreSQL).\n\n"
    )
    s += "Directus figures used:\n\n" + directus_table(directus) + "\n"
    s += "### Targets\n\n" + targets_list(v) + "\n"
    s += "### PostgreSQL plans (the service's SQL, EXPLAIN (ANALYZE, BUFFERS))\n\n"
    s += explain_findings(explained) + "\n" + explain_md(explained, sqlite_plans)
    s += "### Profile: REST list pageSize=200 (SQLite)\n\n"
    s += profile_md(prof, next((r for r in rows if r.key == "rest-list-200"), None)) + "\n"
    by_note: dict[str, list[str]] = {}
    for r in rows:
        if r.note:
            where = "SQLite" if r.group.startswith("SQLite") else "PostgreSQL"
            by_note.setdefault(r.note, []).append(f"{r.label} ({where})")
    if notes or by_note:
        s += "### Notes\n\n"
        for n in notes:
            s += f"- {n}\n"
        for note, labels in by_note.items():
            s += f"- {note[0].upper() + note[1:]}: {'; '.join(labels)}.\n"
        s += "\n"
    return s


if __name__ == "__main__":
    sys.exit(main())
