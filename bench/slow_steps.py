"""Long event-loop steps under bench_fairness's attack: where the server's loop is held.

    .venv/bin/python bench/slow_steps.py [--collections 10] [--seconds 15] [--database-url …]
        [--report slow-steps.txt] [--limited]

Runs bench_fairness.py's measurement against a server on asyncio's own loop (not uvloop) in
debug mode (PYTHONASYNCIODEBUG=1, `slow_callback_duration` 5 ms: asyncio logs every longer
step), and records every step over 5 ms with where its time went: a thread samples the
loop thread's stack every ~0.5 ms while a step runs. The report lists the samples by the
innermost frame of the project's code and by the innermost frame overall, the longest steps,
and the garbage collector's pauses by generation. By default the attacker's plan allows 1,000
requests/second, so that its heavy queries are all answered (what is measured is the heavy
path, not the allowance that refuses them); `--limited` keeps the plan's rate.

Samples taken while the loop thread waits for the GIL show the line it waits at (a socket
`send`, a hand-over to the SQLite thread); steps of one or two samples and hundreds of
milliseconds are the host descheduling the process, not code.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.base_events
import asyncio.events
import atexit
import collections
import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

THRESHOLD = 0.005
PROJECT = ("/pixelwand/", "/schema/", "/compat_rest/")


# --- the server side ----------------------------------------------------------------------


def _describe(frame: FrameType) -> tuple[str, str | None]:
    """(innermost frame, innermost frame of the project's code) of a stack."""
    inner = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}"
    current: FrameType | None = frame
    while current is not None:
        name = current.f_code.co_filename
        if any(p in name for p in PROJECT):
            where = f"{name.split('/')[-2]}/{os.path.basename(name)}"
            return inner, f"{where}:{current.f_code.co_name}:{current.f_lineno}"
        current = current.f_back
    return inner, None


def _report(
    path: str, steps: list[tuple[float, list[Any], str]], collections_: dict[int, list[float]]
) -> None:
    durations = sorted(d for d, _, _ in steps)
    by_project: collections.Counter[Any] = collections.Counter()
    by_inner: collections.Counter[Any] = collections.Counter()
    by_pair: collections.Counter[Any] = collections.Counter()
    for _, samples, _ in steps:
        for inner, project in samples:
            by_project[project] += 1
            by_inner[inner] += 1
            by_pair[(project, inner)] += 1
    total = sum(by_project.values()) or 1
    with open(path, "w") as out:
        out.write(f"steps over {THRESHOLD * 1000:.0f} ms: {len(steps)}, {sum(durations):.2f} s\n")
        if durations:
            at = lambda q: durations[min(len(durations) - 1, int(q * len(durations)))]  # noqa: E731
            out.write(
                f"p50 {at(0.5) * 1000:.1f} ms, p90 {at(0.9) * 1000:.1f} ms, "
                f"max {durations[-1] * 1000:.1f} ms\n"
            )
        for title, counter, rows in (
            ("innermost project frame", by_project, 30),
            ("innermost frame", by_inner, 30),
            ("(project frame, innermost frame)", by_pair, 50),
        ):
            out.write(f"\nsamples in those steps by {title}:\n")
            for key, n in counter.most_common(rows):
                out.write(f"{n:6d} {100 * n / total:5.1f}%  {key}\n")
        out.write("\ngarbage collections (count, total, longest):\n")
        for generation, pauses in sorted(collections_.items()):
            out.write(
                f"  generation {generation}: {len(pauses)}, {sum(pauses) * 1000:.1f} ms, "
                f"{max(pauses) * 1000:.1f} ms\n"
            )
        out.write("\nlongest steps:\n")
        for duration, samples, what in sorted(steps, key=lambda s: -s[0])[:25]:
            top = collections.Counter(samples).most_common(3)
            out.write(f"{duration * 1000:8.1f} ms {what}\n      {top}\n")


def serve(port: int, report: str) -> None:
    """`pixelwand serve` on asyncio's loop, recording the steps over THRESHOLD."""
    import uvicorn

    from pixelwand import logs
    from pixelwand.config import Settings

    asyncio.base_events.BaseEventLoop.slow_callback_duration = THRESHOLD  # type: ignore[attr-defined]
    loop_thread = threading.get_ident()
    state: dict[str, Any] = {"running": False, "samples": []}
    steps: list[tuple[float, list[Any], str]] = []

    def sample() -> None:
        while True:
            time.sleep(0.0005)
            if state["running"]:
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    state["samples"].append(_describe(frame))

    threading.Thread(target=sample, daemon=True).start()
    run = asyncio.events.Handle._run

    def timed_run(handle: asyncio.events.Handle) -> None:
        state["samples"] = []
        state["running"] = True
        started = time.perf_counter()
        try:
            run(handle)
        finally:
            state["running"] = False
            took = time.perf_counter() - started
            if took > THRESHOLD:
                steps.append((took, state["samples"], repr(handle)[:160]))

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    gc_pauses: dict[int, list[float]] = collections.defaultdict(list)
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses[info["generation"]].append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(on_gc)
    atexit.register(_report, report, steps, gc_pauses)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = Settings.from_env()
    metrics = settings.data_dir / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    uvicorn.run(
        "pixelwand.app:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        http="pixelwand.web.protocol:HeaderTimeoutProtocol",
        log_level="warning",
        log_config=logs.uvicorn_log_config("WARNING", "text"),
        access_log=False,
    )


# --- the driver -------------------------------------------------------------------------


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import httpx

    import bench.bench_fairness as fairness
    import bench.live as live

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", default="slow-steps.txt")
    parser.add_argument("--limited", action="store_true", help="keep the plan's rate")
    args, rest = parser.parse_known_args()
    report = str(Path(args.report).resolve())
    limited = args.limited

    original_init = live.LiveServer.__init__

    def init(self: live.LiveServer, data_dir: Path, extra: dict[str, str] | None = None) -> None:
        extra = dict(extra or {})
        if not limited:
            extra["PIXELWAND_PLAN_TEAM_RPS"] = "1000"
        original_init(self, data_dir, extra)

    def start(self: live.LiveServer) -> None:
        self.cli("migrate")
        log = open(self.data_dir / "server.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.port), report],
            env={**self.env, "PYTHONASYNCIODEBUG": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("server not ready within 60 s")

    live.LiveServer.__init__ = init  # type: ignore[method-assign]
    live.LiveServer.start = start  # type: ignore[method-assign]
    sys.argv = [sys.argv[0], *rest]
    fairness.main()
    print(f"slow steps: {report}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        main()
