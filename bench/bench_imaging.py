"""Image pipeline benchmark: the real server against raw libvips, same run, same machine.

    make bench            # = .venv/bin/python bench/bench_imaging.py

1. Export URL, uncached: `GET /api/v1/assets/{id}/export-url?format=…&quality=85&maxWidth=…`
   on a photo-like 6000x4000 JPEG, then GET of the signed URL it returns, against an in-process
   pyvips `thumbnail` + encode of the same file to the same size with the server pool's thread
   setting (and, to split the difference, the product's own `render()` in-process).
2. ZIP export: `POST /api/v1/exports` of 100 photo-like 2000x1500 JPEGs as WEBP fit 1024x1024,
   streamed to disk (images/s, time to first byte, server peak RSS), against a raw pyvips loop
   over the same files with the pool's concurrency.

The server is started as a user would (`pixelwand migrate`, then `pixelwand serve --no-migrate`)
in a temporary data directory, and stopped by its PID when the run ends. Timed loops have fixed
counts; nothing asserts on time. Prints a markdown report and writes it into docs/benchmarks.md
under "## Image pipeline" (the rest of that file is kept).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import httpx
import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import CorpusFile, ensure_corpus, libvips_version  # noqa: E402
from bench.procfs import free_port, proc_status, reset_peak_rss  # noqa: E402
from pixelwand.imaging.params import TransformParams  # noqa: E402
from pixelwand.imaging.pipeline import render  # noqa: E402
from pixelwand.imaging.pool import available_cores  # noqa: E402

BIN = Path(sys.executable).parent
WORK = Path(os.environ.get("PIXELWAND_BENCH_DIR", "/tmp/pixelwand-bench"))
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Image pipeline"
QUALITY = 85
BOX = 800  # export-url: fit within BOX+i x BOX (i = iteration), see `uncached_widths`
ZIP_BOX = 1024
WEBP_EFFORT = 4  # what the product uses (pipeline.WEBP_EFFORT) and libvips' default
EXPORT_URL_TARGET = 1.15  # service / raw median at most
ZIP_TARGET = 0.85  # service / raw images/s at least
RSS_TARGET_MB = 400
# A ZIP round is "quiet" when other processes used less than this share of the CPUs during
# both its raw loop and its export; the ZIP target is judged on quiet rounds when there are.
QUIET_PCT = 10.0
QUIET_ROUNDS = 3
# Export-URL figures use the quiet iterations (same threshold) when there are at least this many.
MIN_QUIET_ITERATIONS = 8


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- statistics -------------------------------------------------------------------------


@dataclass
class Series:
    samples: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.samples.append(value)

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def p90(self) -> float:
        s = sorted(self.samples)
        return s[min(len(s) - 1, round(0.9 * (len(s) - 1)))]


def ms(t0: float, t1: float) -> float:
    return (t1 - t0) * 1000.0


# --- the server -------------------------------------------------------------------------


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _system_cpu_s() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, of which stolen by the hypervisor)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK, v[7] / CLK_TCK


@dataclass
class Interference:
    """CPU used by processes other than the bench and the server while a section ran."""

    other_pct: float  # % of all cores
    steal_pct: float


class CpuMeter:
    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.t0 = time.monotonic()
        self.busy0, self.steal0 = _system_cpu_s()
        self.own0 = self._own()

    def _own(self) -> float:
        return sum(_proc_cpu_s(p) for p in self.pids)

    def result(self) -> Interference:
        wall = (time.monotonic() - self.t0) * (os.cpu_count() or 1)
        busy, steal = _system_cpu_s()
        other = (busy - self.busy0) - (self._own() - self.own0)
        return Interference(max(0.0, other) / wall * 100, (steal - self.steal0) / wall * 100)


def _descendants(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    out.append(int(child))
                    out.extend(_descendants(int(child)))
    except OSError:
        pass
    return out


def listener_pid(root_pid: int, port: int) -> int:
    """The process (root_pid or a descendant) holding the listening socket on `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in list(f)[1:]:
                parts = line.split()
                if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":
                    inodes.add(parts[9])
    for pid in [root_pid, *_descendants(root_pid)]:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return pid
    return root_pid


class Server:
    """`pixelwand migrate` + `pixelwand serve --no-migrate` in a fresh temporary data dir."""

    def __init__(self, workdir: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="server-", dir=workdir))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
        self.env.update(
            PIXELWAND_DATA_DIR=str(self.dir),
            PIXELWAND_DATABASE_URL=f"sqlite://{self.dir}/pixelwand.db",
            PIXELWAND_STORAGE_URL=f"local:{self.dir}/storage",
            PIXELWAND_PLAN_ENTERPRISE_RPS="100000",
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self.key = ""
        self.startup_s = 0.0

    def start(self) -> None:
        subprocess.run(
            [str(BIN / "pixelwand"), "migrate"],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        out = open(self.dir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(BIN / "pixelwand"), "serve", "--port", str(self.port), "--no-migrate"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        out.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if not self.key:
                m = re.search(r"^(ak_live_\S+)$", self.log(), re.M)
                self.key = m.group(1) if m else ""
            if self.key:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                        self.startup_s = time.perf_counter() - t0
                        self.pid = listener_pid(self.proc.pid, self.port)
                        return
            time.sleep(0.1)
        raise RuntimeError(f"server not ready within 60 s:\n{self.log()}")

    def log(self) -> str:
        return (self.dir / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def upload(client: httpx.Client, f: CorpusFile, name: str) -> str:
    """presign → PUT → finalize, as the README documents; returns the asset id."""
    size = f.path.stat().st_size
    meta = {"originalName": name, "mimeType": "image/jpeg", "size": size}
    r = client.post("/api/v1/assets", json={"mode": "presign", **meta})
    r.raise_for_status()
    presigned = r.json()
    r = client.request(
        presigned["method"],
        presigned["uploadUrl"],
        content=f.path.read_bytes(),
        headers=presigned["headers"],
    )
    r.raise_for_status()
    r = client.post(
        "/api/v1/assets",
        json={"mode": "finalize", "storageKey": presigned["storageKey"], **meta},
    )
    r.raise_for_status()
    return r.json()["id"]


# --- 1. export URL ----------------------------------------------------------------------


@dataclass
class ExportUrlResult:
    fmt: str
    raw: Series = field(default_factory=Series)
    render: Series = field(default_factory=Series)
    request: Series = field(default_factory=Series)  # GET export-url (render + store + sign)
    fetch: Series = field(default_factory=Series)  # GET of the signed URL
    total: Series = field(default_factory=Series)  # the two together
    cached: Series = field(default_factory=Series)  # GET export-url again, same parameters
    raw_bytes: int = 0
    service_bytes: int = 0
    out_size: str = ""
    interference: Interference | None = None
    quiet: list[bool] = field(default_factory=list)  # per timed iteration

    @property
    def use_quiet(self) -> bool:
        return sum(self.quiet) >= MIN_QUIET_ITERATIONS

    def pick(self, s: Series) -> Series:
        """`s` over the quiet iterations when there are enough of them, else all of it."""
        if not self.use_quiet:
            return s
        return Series([x for x, q in zip(s.samples, self.quiet, strict=True) if q])

    def which(self) -> str:
        n, q = len(self.quiet), sum(self.quiet)
        if self.use_quiet:
            return f"the {q} quiet iterations of {n}"
        return f"all {n} iterations (only {q} quiet)"


def raw_thumbnail(path: str, width: int, height: int, fmt: str) -> tuple[bytes, int, int]:
    """The baseline: libvips shrink-on-load thumbnail + encode, nothing else."""
    im = pyvips.Image.thumbnail(path, width, height=height)
    if fmt == "WEBP":
        return im.webpsave_buffer(Q=QUALITY, effort=WEBP_EFFORT), im.width, im.height
    return im.jpegsave_buffer(Q=QUALITY), im.width, im.height


def bench_export_url(
    client: httpx.Client,
    pid: int,
    asset_id: str,
    photo: CorpusFile,
    fmt: str,
    n: int,
    warmup: int,
) -> ExportUrlResult:
    res = ExportUrlResult(fmt)
    section = CpuMeter([os.getpid(), pid])
    path = str(photo.path)
    # Warm-up widths never repeat the timed ones (each width is a new rendition).
    widths = [BOX + 100 + i for i in range(warmup)] + [BOX + i for i in range(n)]
    for i, width in enumerate(widths):
        timed = i >= warmup
        meter = CpuMeter([os.getpid(), pid])

        t0 = time.perf_counter()
        raw, w, h = raw_thumbnail(path, width, BOX, fmt)
        t1 = time.perf_counter()

        params = TransformParams(fmt, QUALITY, width, BOX, True)
        rendered = render(photo.path, params, source_mime="image/jpeg", max_pixels=100_000_000)
        t2 = time.perf_counter()

        query = {"format": fmt, "quality": QUALITY, "maxWidth": width, "maxHeight": BOX}
        t3 = time.perf_counter()
        r = client.get(f"/api/v1/assets/{asset_id}/export-url", params=query)
        t4 = time.perf_counter()
        r.raise_for_status()
        body = r.json()
        got = client.get(body["url"])
        t5 = time.perf_counter()
        got.raise_for_status()
        if body["cached"] is not False:
            raise RuntimeError(f"export-url maxWidth={width} was served from cache: {body}")
        if (rendered.width, rendered.height) != (w, h):
            raise RuntimeError(f"render() gave {rendered.width}x{rendered.height}, raw {w}x{h}")
        expected = "image/webp" if fmt == "WEBP" else "image/jpeg"
        if got.headers.get("content-type", "").split(";")[0] != expected:
            raise RuntimeError(f"rendition served as {got.headers.get('content-type')}")
        if timed:
            res.quiet.append(meter.result().other_pct < QUIET_PCT)
            res.raw.add(ms(t0, t1))
            res.render.add(ms(t1, t2))
            res.request.add(ms(t3, t4))
            res.fetch.add(ms(t4, t5))
            res.total.add(ms(t3, t5))
        if width == BOX:
            res.raw_bytes, res.service_bytes, res.out_size = len(raw), len(got.content), f"{w}x{h}"
    # The same request again: the stored rendition is reused.
    query = {"format": fmt, "quality": QUALITY, "maxWidth": BOX, "maxHeight": BOX}
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(f"/api/v1/assets/{asset_id}/export-url", params=query)
        t1 = time.perf_counter()
        r.raise_for_status()
        if r.json()["cached"] is not True:
            raise RuntimeError("the repeated export-url was not cached")
        res.cached.add(ms(t0, t1))
    res.interference = section.result()
    return res


# --- 2. ZIP export ----------------------------------------------------------------------


@dataclass
class ZipResult:
    raw_ips: Series = field(default_factory=Series)
    raw_wall: Series = field(default_factory=Series)
    ips: Series = field(default_factory=Series)
    wall: Series = field(default_factory=Series)
    headers_ms: Series = field(default_factory=Series)
    ttfb_ms: Series = field(default_factory=Series)
    peak_rss_kb: Series = field(default_factory=Series)  # VmHWM after each export (reset before)
    sampled_rss_kb: Series = field(default_factory=Series)  # max VmRSS polled during each one
    rss_before_kb: int = 0
    hwm_before_kb: int = 0
    hwm_reset: bool = True
    zip_bytes: int = 0
    entries: int = 0
    raw_bytes: int = 0
    interference: Interference | None = None
    rounds: list[ZipRound] = field(default_factory=list)

    def quiet(self) -> list[ZipRound]:
        return [r for r in self.rounds if r.quiet]

    def judged(self) -> tuple[Series, Series, str]:
        """(service images/s, raw images/s, which rounds): the quiet rounds when there are."""
        chosen = self.quiet() or self.rounds
        label = (
            f"the {len(chosen)} quiet rounds of {len(self.rounds)}"
            if self.quiet()
            else f"all {len(self.rounds)} rounds (none was quiet)"
        )
        return (
            Series([r.ips for r in chosen]),
            Series([r.raw_ips for r in chosen]),
            label,
        )


@dataclass
class ZipRound:
    raw_ips: float
    raw_other_pct: float
    ips: float
    other_pct: float
    ttfb_ms: float
    peak_rss_kb: int

    @property
    def quiet(self) -> bool:
        return max(self.raw_other_pct, self.other_pct) < QUIET_PCT


def raw_zip_loop(files: list[CorpusFile], workers: int) -> tuple[float, int]:
    """(wall seconds, output bytes): every file → fit ZIP_BOX → WEBP, `workers` at a time."""

    def one(f: CorpusFile) -> int:
        im = pyvips.Image.thumbnail(str(f.path), ZIP_BOX, height=ZIP_BOX)
        return len(im.webpsave_buffer(Q=QUALITY, effort=WEBP_EFFORT))

    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        t0 = time.perf_counter()
        total = sum(ex.map(one, files))
        return time.perf_counter() - t0, total


class RssSampler:
    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def verify_zip(path: Path, count: int) -> int:
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        if bad is not None:
            raise RuntimeError(f"{path}: entry {bad} is corrupt")
        names = z.namelist()
        if len(names) != count or not all(n.endswith(".webp") for n in names):
            raise RuntimeError(f"{path}: {len(names)} entries, expected {count} .webp: {names[:5]}")
        first = pyvips.Image.new_from_buffer(z.read(names[0]), "")
        if max(first.width, first.height) != ZIP_BOX:
            raise RuntimeError(f"{names[0]} is {first.width}x{first.height}")
        return len(names)


def bench_zip(
    client: httpx.Client,
    server: Server,
    asset_ids: list[str],
    files: list[CorpusFile],
    rounds: int,
    max_rounds: int,
    workers: int,
) -> ZipResult:
    res = ZipResult()
    st = proc_status(server.pid)
    res.rss_before_kb, res.hwm_before_kb = st["VmRSS"], st["VmHWM"]
    body = {
        "assetIds": asset_ids,
        "config": {"format": "webp", "maxWidth": ZIP_BOX, "maxHeight": ZIP_BOX},
    }
    raw_zip_loop(files[: 2 * workers], workers)  # warm-up (page cache, libvips init)
    meter = CpuMeter([os.getpid(), server.pid])
    r = 0
    # At least `rounds`; then on, up to `max_rounds`, until QUIET_ROUNDS were quiet.
    while r < rounds or (r < max_rounds and len(res.quiet()) < QUIET_ROUNDS):
        raw_meter = CpuMeter([os.getpid(), server.pid])
        wall, res.raw_bytes = raw_zip_loop(files, workers)
        raw_noise = raw_meter.result()
        res.raw_wall.add(wall)
        res.raw_ips.add(len(files) / wall)

        res.hwm_reset = reset_peak_rss(server.pid) and res.hwm_reset
        out = WORK / f"export-{r}.zip"
        svc_meter = CpuMeter([os.getpid(), server.pid])
        with RssSampler(server.pid) as sampler, open(out, "wb") as f:
            t0 = time.perf_counter()
            first = 0.0
            with client.stream("POST", "/api/v1/exports", json=body, timeout=600) as resp:
                t_headers = time.perf_counter()
                resp.raise_for_status()
                for chunk in resp.iter_raw():
                    if not first:
                        first = time.perf_counter()
                    f.write(chunk)
            t1 = time.perf_counter()
        svc_noise = svc_meter.result()
        res.peak_rss_kb.add(proc_status(server.pid)["VmHWM"])
        res.sampled_rss_kb.add(sampler.peak)
        res.wall.add(t1 - t0)
        res.ips.add(len(asset_ids) / (t1 - t0))
        res.headers_ms.add(ms(t0, t_headers))
        res.ttfb_ms.add(ms(t0, first))
        res.entries = verify_zip(out, len(asset_ids))
        res.zip_bytes = out.stat().st_size
        out.unlink()
        rnd = ZipRound(
            raw_ips=len(files) / wall,
            raw_other_pct=raw_noise.other_pct,
            ips=len(asset_ids) / (t1 - t0),
            other_pct=svc_noise.other_pct,
            ttfb_ms=ms(t0, first),
            peak_rss_kb=res.peak_rss_kb.samples[-1],
        )
        res.rounds.append(rnd)
        r += 1
        log(
            f"  round {r}: raw {rnd.raw_ips:.1f} img/s (others {rnd.raw_other_pct:.0f}% CPU), "
            f"service {rnd.ips:.1f} img/s (others {rnd.other_pct:.0f}%), "
            f"TTFB {rnd.ttfb_ms:.0f} ms, peak RSS {rnd.peak_rss_kb / 1024:.0f} MB"
        )
    res.interference = meter.result()
    return res


# --- report -----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "nproc": str(os.cpu_count()),
        "CPU model": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "load average at start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "Python": platform.python_version(),
        "pyvips": version("pyvips"),
        "pyvips-binary": version("pyvips-binary"),
        "libvips": libvips_version(),
        "httpx (client)": version("httpx"),
        "uvicorn": version("uvicorn"),
        "code": _git_state(),
    }


def _git_state() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    changed = [
        line[3:]
        for line in git(
            "status", "--porcelain", "--", "pixelwand", "compat_rest", "schema"
        ).splitlines()
        if line.strip()
    ]
    if not changed:
        return f"commit {head}, clean product tree"
    return f"commit {head} + uncommitted changes in {len(changed)} product files"


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def stat_cells(s: Series, fmt: str = "{:.1f}") -> list[str]:
    return [f"**{fmt.format(s.median)}**", fmt.format(s.min), fmt.format(s.p90), str(s.n)]


def verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def report(
    info: dict[str, str],
    urls: list[ExportUrlResult],
    z: ZipResult,
    ctx: dict[str, object],
) -> str:
    vips_threads = ctx["vips_threads"]
    workers = ctx["workers"]
    n_zip = ctx["zip_images"]
    lines = [
        SECTION,
        "",
        f"Command: `make bench` (= `.venv/bin/python bench/bench_imaging.py`). Run on "
        f"{ctx['when']}; the run took {ctx['elapsed']:.0f} s. One run, one machine; every figure "
        "below comes from that run. Medians of N timed repetitions; service and baseline "
        "alternate inside one loop so that both see the same machine state.",
        "",
        "### Summary",
        "",
        "Targets are judged on the ratio of medians; the ratio of the best samples (min ms, max "
        "images/s) is shown beside it because on a shared machine it is the figure least moved "
        "by other processes.",
        "",
        "| measurement | service | raw libvips | ratio (medians) | ratio (best) | target "
        "| result |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for u in urls:
        total, raw = u.pick(u.total), u.pick(u.raw)
        ratio = total.median / raw.median
        lines.append(
            row(
                f"export URL, uncached, 6000x4000 JPEG → {u.fmt} q{QUALITY} {u.out_size}"
                f" (export-url + GET), median ms ({u.which()})",
                f"{total.median:.1f}",
                f"{raw.median:.1f}",
                f"{ratio:.3f}",
                f"{total.min / raw.min:.3f}",
                f"≤ {EXPORT_URL_TARGET:.2f}",
                f"{verdict(ratio <= EXPORT_URL_TARGET)} ({(ratio - 1) * 100:+.1f}%)",
            )
        )
    z_ips, z_raw, z_which = z.judged()
    zratio = z_ips.median / z_raw.median
    lines.append(
        row(
            f"ZIP export, {n_zip} x 2000x1500 JPEG → WEBP fit {ZIP_BOX}, median images/s "
            f"({z_which})",
            f"{z_ips.median:.2f}",
            f"{z_raw.median:.2f}",
            f"{zratio:.3f}",
            f"{z.ips.max / z.raw_ips.max:.3f}",
            f"≥ {ZIP_TARGET:.2f}",
            verdict(zratio >= ZIP_TARGET),
        )
    )
    peak_mb = z.peak_rss_kb.max / 1024
    lines.append(
        row(
            "ZIP export, server peak RSS (VmHWM) during the export, MB (worst round)",
            f"{peak_mb:.0f}",
            "",
            "",
            "",
            f"< {RSS_TARGET_MB}",
            verdict(peak_mb < RSS_TARGET_MB),
        )
    )
    noise = [f"export URL {u.fmt}: {_noise(u.interference)}" for u in urls]
    noise.append(f"ZIP: {_noise(z.interference)}")
    lines += [
        "",
        "CPU used by other processes on the machine while each section ran (share of all "
        "cores; hypervisor steal in brackets): " + "; ".join(noise) + ".",
    ]
    disturbed = [
        f"export URL {u.fmt}"
        for u in urls
        if not u.use_quiet and u.interference and u.interference.other_pct >= QUIET_PCT
    ]
    if not z.quiet() and z.interference and z.interference.other_pct >= QUIET_PCT:
        disturbed.append("ZIP")
    if disturbed:
        lines += [
            "",
            f"**Warning: too few quiet samples for {', '.join(disturbed)}: those figures are "
            "disturbed by other processes. Re-run on a quiet machine before drawing "
            "conclusions.**",
        ]
    else:
        lines += [
            "",
            "The judged figures come from samples during which other processes used under "
            f"{QUIET_PCT:.0f}% of the CPUs (see Methodology); all samples are listed below.",
        ]
    lines += [
        "",
        "### Machine",
        "",
        "| | |",
        "|---|---|",
        *[row(k, v) for k, v in info.items()],
        row(
            "server",
            f"`pixelwand serve --no-migrate`, 1 process, {workers} image workers x "
            f"{vips_threads} libvips thread(s) (pool.py defaults), ready in "
            f"{ctx['startup']:.1f} s",
        ),
        "",
        f"### 1. Export URL, uncached: 6000x4000 JPEG ({ctx['photo_bytes']:,} bytes) → fit "
        f"{BOX}x{BOX}",
        "",
        "Each timed iteration runs, in order: raw libvips in the bench process; the product's "
        "`render()` in the bench process; then over HTTP `GET /api/v1/assets/{id}/export-url` "
        "followed by a GET of the signed URL it returned. Iteration i asks for "
        f"maxWidth={BOX}+i, maxHeight={BOX} (a new rendition each time; see Methodology).",
        "",
        "| output | path | median ms | min ms | p90 ms | N | ratio to raw (median) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for u in urls:
        out = f"{u.fmt} q{QUALITY}"
        raw = u.pick(u.raw)
        for label, s in (
            (f"raw pyvips `thumbnail` + {u.fmt.lower()}save, {vips_threads} thread", raw),
            ("product `render()` in-process (no HTTP)", u.pick(u.render)),
            ("service: GET export-url (render + store + DB + sign)", u.pick(u.request)),
            ("service: GET of the signed URL (rendition bytes)", u.pick(u.fetch)),
            ("**service end to end** (export-url + GET)", u.pick(u.total)),
            ("service: GET export-url again, cached (reference, all)", u.cached),
        ):
            lines.append(row(out, label, *stat_cells(s), f"{s.median / raw.median:.3f}"))
        lines.append(
            row(
                out,
                f"output bytes at {u.out_size}: raw {u.raw_bytes:,}, service {u.service_bytes:,}",
                "",
                "",
                "",
                "",
                "",
            )
        )
    lines.append("")
    for u in urls:
        raw, rend, req = u.pick(u.raw), u.pick(u.render), u.pick(u.request)
        lines += [
            f"- {u.fmt}: rows use {u.which()}; quiet: other processes used under "
            f"{QUIET_PCT:.0f}% of the CPUs during the iteration. Over all {u.raw.n}: raw "
            f"{u.raw.median:.1f} ms, end to end "
            f"{u.total.median:.1f} ms, ratio {u.total.median / u.raw.median:.3f}. Where the "
            f"time goes (medians): libvips {raw.median:.1f} ms; the product pipeline's own "
            "extras (header check, `thumbnail_source`, fail-on-error, metadata strip, optimized "
            f"JPEG tables) {rend.median - raw.median:+.1f} ms; HTTP + GraphQL + auth + SQLite "
            f"lookup/insert + disk write + signing {req.median - rend.median:+.1f} ms; "
            f"fetching the rendition {u.pick(u.fetch).median:.1f} ms.",
        ]
    lines += [
        "",
        f"### 2. ZIP export: {n_zip} x 2000x1500 JPEG → WEBP q{QUALITY} fit {ZIP_BOX}x{ZIP_BOX}",
        "",
        f'`POST /api/v1/exports` with `{{"format": "webp", "maxWidth": {ZIP_BOX}, '
        f'"maxHeight": {ZIP_BOX}}}`, response streamed to disk; raw = a {workers}-thread pyvips '
        f"loop (`thumbnail` + `webpsave` effort {WEBP_EFFORT}, {vips_threads} libvips thread) over "
        "the same files. Rounds alternate raw, service; a round is quiet when other processes "
        f"used under {QUIET_PCT:.0f}% of the CPUs during both of its halves. At least "
        f"{ctx['zip_rounds']} rounds, then more (up to {ctx['zip_max_rounds']}) until "
        f"{QUIET_ROUNDS} were quiet.",
        "",
        "| round | raw images/s | others' CPU (raw) | service images/s | others' CPU (service) "
        "| service / raw | TTFB ms | peak RSS MB | quiet |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *[
            row(
                i + 1,
                f"{r.raw_ips:.2f}",
                f"{r.raw_other_pct:.0f}%",
                f"{r.ips:.2f}",
                f"{r.other_pct:.0f}%",
                f"{r.ips / r.raw_ips:.3f}",
                f"{r.ttfb_ms:.0f}",
                f"{r.peak_rss_kb / 1024:.0f}",
                "yes" if r.quiet else "no",
            )
            for i, r in enumerate(z.rounds)
        ],
        "",
        "All rounds:",
        "",
        "| measurement | median | min | p90 | max | N (rounds) |",
        "|---|---:|---:|---:|---:|---:|",
        row("raw pyvips, images/s", *_zcells(z.raw_ips, "{:.2f}")),
        row("raw pyvips, wall s", *_zcells(z.raw_wall, "{:.2f}")),
        row("**service, images/s** (whole download)", *_zcells(z.ips, "{:.2f}")),
        row("service, wall s (request → last byte)", *_zcells(z.wall, "{:.2f}")),
        row(
            "service / raw images/s, same round",
            *_zcells(
                Series([a / b for a, b in zip(z.ips.samples, z.raw_ips.samples, strict=True)]),
                "{:.3f}",
            ),
        ),
        row("service, response headers ms", *_zcells(z.headers_ms, "{:.0f}")),
        row("service, time to first body byte ms", *_zcells(z.ttfb_ms, "{:.0f}")),
        row(
            "server VmHWM during the export, MB (reset before)",
            *_zcells(Series([x / 1024 for x in z.peak_rss_kb.samples]), "{:.0f}"),
        ),
        row(
            "server VmRSS polled every 20 ms, max, MB",
            *_zcells(Series([x / 1024 for x in z.sampled_rss_kb.samples]), "{:.0f}"),
        ),
        "",
        f"Server before the first export: VmRSS {z.rss_before_kb / 1024:.0f} MB, lifetime VmHWM "
        f"{z.hwm_before_kb / 1024:.0f} MB (start, uploads and section 1). Archive: "
        f"{z.entries} entries, {z.zip_bytes:,} bytes, `zipfile.testzip()` clean in every round "
        f"(raw WEBP total {z.raw_bytes:,} bytes)."
        + ("" if z.hwm_reset else " VmHWM could not be reset: the peak is the lifetime peak."),
        "",
        "### Methodology",
        "",
        "- Corpus: `bench/corpus.py` generates deterministic photo-like JPEGs (Q90, seeded "
        "Perlin/fBm texture, gradients, shapes, grain; ~0.8-1 byte/pixel) into "
        "/tmp/pixelwand-bench/images once and reuses them. Same generator and seeds as the peer "
        "harness, so photo_6000x4000.jpg is the same 19.9 MB file.",
        "- Server: a fresh temporary data dir (SQLite + local storage), `pixelwand migrate` then "
        "`pixelwand serve --port <free> --no-migrate`; the first-start admin key is read from its "
        "stdout; `PIXELWAND_PLAN_ENTERPRISE_RPS=100000` so the rate limiter never refuses; "
        "everything else default (so the sweeper and INFO logging run as for a user). Files go "
        "in through the documented presign → PUT → finalize flow. One keep-alive httpx client "
        "on the same machine, no CPU pinning.",
        f"- Uncached export URLs: renditions are cached per (asset, normalized parameters), so "
        f"iteration i asks for maxWidth={BOX}+i: a new cache key each time, and the same work "
        f"to within a pixel of output width ({BOX}..{BOX + ctx['n'] - 1} x ~533). The raw and "
        "`render()` baselines use the very same sizes; every timed response was checked to say "
        "`cached: false`. Warm-up iterations use other widths.",
        f"- Raw baseline threads: the server's pool runs {workers} images at once with "
        f"`concurrency_set(cores // workers)` = {vips_threads} libvips thread(s) each "
        "(pixelwand/imaging/pool.py); the baselines run with the same setting and the libvips "
        "operation cache off, as the server has it.",
        "- Raw baseline encode settings: `webpsave_buffer(Q=85, effort=4)` and "
        "`jpegsave_buffer(Q=85)` (libvips defaults otherwise); the product strips metadata and "
        "uses optimized Huffman tables for small JPEGs, hence its smaller JPEG output.",
        "- ZIP: images/s = assets / wall time from sending the POST to the last byte on disk; "
        "the target is judged on the medians of the quiet rounds (all rounds when none was "
        "quiet), and every round is listed. "
        "Peak RSS: the server process's VmHWM, reset through /proc/PID/clear_refs right before "
        "each export and read right after (and VmRSS polled every 20 ms as a cross-check); "
        "the PID is the one holding the listening socket (with one worker, the `pixelwand` "
        "process itself).",
        "- Noise control: the machine's busy time (/proc/stat) minus the CPU time of the "
        "bench and server processes is what other processes used. An export-URL iteration is "
        f"quiet when that was under {QUIET_PCT:.0f}% of the CPUs during it; the export-URL "
        f"rows use the quiet iterations when there are at least {MIN_QUIET_ITERATIONS}, else "
        "all. Likewise for ZIP rounds (both halves quiet). All-sample figures are printed too.",
        "- p90 is nearest-rank; ratios are of medians.",
        "",
        "### Caveats",
        "",
        "- A noisy 2-vCPU virtual machine: expect a few percent run-to-run variation; medians "
        "are what to compare. The HTTP client shares the two cores with the server; the raw "
        "baselines run while the server is idle.",
        "- Section 1 is sequential, one request at a time: it measures per-request overhead on "
        "one image, not throughput; section 2 measures throughput with both cores busy, one "
        "export at a time.",
        "- Other engineers' test runs share this machine; quiet-sample selection removes the "
        "worst of it but not everything (bursts shorter than the 10 ms accounting tick, "
        "memory-bandwidth and cache contention).",
        "- The 6000x4000 render is dominated by JPEG decoding (shrink-on-load), which is "
        "single-threaded in libjpeg-turbo whatever the thread setting.",
        "- Local-disk storage: with S3, export URLs would add an upload of the rendition and ZIPs "
        "a download of each original.",
    ]
    return "\n".join(lines) + "\n"


def _noise(i: Interference | None) -> str:
    return "n/a" if i is None else f"{i.other_pct:.0f}% ({i.steal_pct:.1f}% steal)"


def _zcells(s: Series, fmt: str) -> list[str]:
    return [
        f"**{fmt.format(s.median)}**",
        fmt.format(s.min),
        fmt.format(s.p90),
        fmt.format(s.max),
        str(s.n),
    ]


def write_doc(path: Path, section: str) -> None:
    """Replace the "## Image pipeline" section of `path` (or add it), keeping the rest."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")


# --- main -------------------------------------------------------------------------------


@contextlib.contextmanager
def running_server(workdir: Path, keep: bool) -> Iterator[Server]:
    server = Server(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if not keep:
            shutil.rmtree(server.dir, ignore_errors=True)


def timed(label: str, fn: Callable[[], object]) -> object:
    t0 = time.perf_counter()
    out = fn()
    log(f"{label}: {time.perf_counter() - t0:.1f} s")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20, help="timed export-url iterations per format")
    ap.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    ap.add_argument("--zip-images", type=int, default=100, help="assets in the ZIP export")
    ap.add_argument("--zip-rounds", type=int, default=5, help="timed exports (and raw loops)")
    ap.add_argument(
        "--zip-max-rounds",
        type=int,
        default=10,
        help=f"more rounds, up to this many, until {QUIET_ROUNDS} were quiet",
    )
    ap.add_argument("--doc", type=Path, default=DOC, help="markdown file to update")
    ap.add_argument("--no-doc", action="store_true", help="print only; leave the doc alone")
    ap.add_argument("--keep", action="store_true", help="keep the server's data dir and log")
    ap.add_argument("--json", type=Path, default=None, help="also write raw samples here")
    args = ap.parse_args()

    started = time.perf_counter()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    WORK.mkdir(parents=True, exist_ok=True)
    photo, files = ensure_corpus(set_count=args.zip_images, log=log)

    # The server's pool: PIXELWAND_IMAGE_WORKERS defaults to os.cpu_count(), and each worker
    # gets available_cores() // workers libvips threads (pixelwand/imaging/pool.py).
    workers = os.cpu_count() or 1
    vips_threads = max(1, available_cores() // workers)
    pyvips.cache_set_max(0)
    pyvips.concurrency_set(vips_threads)

    with running_server(WORK, args.keep) as server:
        log(f"server pid {server.pid} on {server.base} (data in {server.dir})")
        headers = {"Authorization": f"Bearer {server.key}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=120) as client:
            photo_id = upload(client, photo, "photo_6000x4000.jpg")
            urls = []
            for fmt in ("WEBP", "JPEG"):
                res = timed(
                    f"export URL {fmt} (n={args.n})",
                    lambda fmt=fmt: bench_export_url(
                        client, server.pid, photo_id, photo, fmt, args.n, args.warmup
                    ),
                )
                assert isinstance(res, ExportUrlResult)
                log(
                    f"  raw {res.raw.median:.1f} ms, render() {res.render.median:.1f} ms, "
                    f"export-url {res.request.median:.1f} + GET {res.fetch.median:.1f} ms"
                )
                urls.append(res)
            ids = timed(
                f"upload {len(files)} images",
                lambda: [upload(client, f, f.path.name) for f in files],
            )
            assert isinstance(ids, list)
            z = bench_zip(client, server, ids, files, args.zip_rounds, args.zip_max_rounds, workers)

    ctx = {
        "when": when,
        "elapsed": time.perf_counter() - started,
        "vips_threads": vips_threads,
        "workers": workers,
        "zip_images": len(files),
        "startup": server.startup_s,
        "photo_bytes": photo.size,
        "n": args.n,
        "zip_rounds": args.zip_rounds,
        "zip_max_rounds": args.zip_max_rounds,
    }
    md = report(info, urls, z, ctx)
    print(md)
    if not args.no_doc:
        write_doc(args.doc, md)
        log(f"wrote {args.doc}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "export_url": {
                        u.fmt: {
                            k: getattr(u, k).samples
                            for k in ("raw", "render", "request", "fetch", "total", "cached")
                        }
                        for u in urls
                    },
                    "zip": {
                        k: getattr(z, k).samples
                        for k in ("raw_ips", "ips", "ttfb_ms", "peak_rss_kb", "sampled_rss_kb")
                    },
                    "zip_rounds": [dataclasses.asdict(r) for r in z.rounds],
                    "context": {k: str(v) for k, v in ctx.items()},
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
