"""Debian's headless Chromium, driven by Playwright, that can never hang the test run.

    chromium = Chromium()
    await chromium.start()
    with chromium.watched(120) as watch:
        context = await chromium.new_context()
        ...
    if watch.fired: ...     # it was killed: every call in flight failed
    await chromium.restart()

Three of seven full test runs saw the renderer spin at full CPU with the Playwright driver
busy beside it, and the test's await never returned: neither `asyncio.wait_for` nor
pytest-timeout's signal ended it (the signal landed in one of Playwright's callbacks), and
the run hung until CI's own limit. So the deadline is kept by a thread, not by the event
loop: when it passes, the thread writes every Python thread's stack, the event loop's tasks
and the browser's processes to stderr, then SIGKILLs the driver and everything it started.
The driver gone, Playwright fails each call in flight (its connection closes), so a wedge
becomes an exception the test can see and act on.

`survives_one_wedge` makes a test that: its first wedge is reported as a warning and the test
is run once more with a fresh driver and browser; a second wedge fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import functools
import os
import signal
import sys
import threading
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from tests.conftest import unavailable

EXECUTABLE = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class BrowserWedged(UserWarning):
    """A browser test's attempt outlived its deadline and its browser was killed."""


class Watch:
    """One deadline. `fired` tells whether it passed (and the browser was killed)."""

    def __init__(self, seconds: float, what: str, pids: Callable[[], list[int]]) -> None:
        self.fired = False
        self._what = what
        self._seconds = seconds
        self._pids = pids
        self._loop = asyncio.get_running_loop()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        pids = self._pids()
        out = sys.stderr
        out.write(f"\n=== {self._what}: still running after {self._seconds:.0f} s ===\n")
        out.write(_process_table(pids))
        out.write("--- event loop tasks ---\n")
        out.write(_task_stacks(self._loop))
        out.write("--- Python threads ---\n")
        out.flush()
        faulthandler.dump_traceback(file=out, all_threads=True)
        for pid in sorted(pids, reverse=True):  # children (Chromium) before the driver
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        out.write(f"=== killed {len(pids)} browser processes ===\n")
        out.flush()


class Chromium:
    """A Playwright driver and one Chromium, restartable; `new_context` as Browser's."""

    def __init__(self) -> None:
        self._manager: Any = None
        self._browser: Any = None

    async def start(self) -> None:
        if not os.access(EXECUTABLE, os.X_OK):
            unavailable(f"Chromium at {EXECUTABLE}", "apt-get install chromium (Debian's package)")
        from playwright.async_api import async_playwright

        before = set(_descendants(os.getpid()))
        self._manager = async_playwright()
        playwright = await self._manager.start()
        self._driver_pids = set(_descendants(os.getpid())) - before
        self._browser = await playwright.chromium.launch(executable_path=EXECUTABLE, args=FLAGS)

    async def stop(self) -> None:
        """Close the browser and the driver; a dead or wedged one is killed instead."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._browser.close(), 15)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._manager.__aexit__(None, None, None), 15)
        self._kill()
        # A killed driver leaves its transport's error future set and unread: read it, or
        # asyncio prints "Future exception was never retrieved" at exit (private, tests only).
        with contextlib.suppress(AttributeError):
            lost = self._manager._client._transport.on_error_future
            if lost.done() and not lost.cancelled():
                lost.exception()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def new_context(self, **options: Any) -> Any:
        return await self._browser.new_context(**options)

    @contextlib.contextmanager
    def watched(self, seconds: float, what: str = "browser test") -> Iterator[Watch]:
        watch = Watch(seconds, what, self._processes)
        watch._timer.start()
        try:
            yield watch
        finally:
            watch._timer.cancel()

    def _processes(self) -> list[int]:
        """The driver started by `start` and every process under it (the browser's)."""
        tree = _children()
        found: list[int] = []
        for pid in self._driver_pids:
            found.append(pid)
            found.extend(_descendants(pid, tree))
        return found

    def _kill(self) -> None:
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def running_chromium() -> AsyncIterator[Chromium]:
    """A started Chromium, stopped (or killed) on the way out: a test's `browser` fixture."""
    chromium = Chromium()
    await chromium.start()
    try:
        yield chromium
    finally:
        await chromium.stop()


def survives_one_wedge(
    seconds: float,
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """Run the test under a `seconds` deadline; a wedge restarts the browser and runs the
    test once more, in a fresh `tmp_path` subfolder. The test takes `browser: Chromium`."""

    def decorate(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(test)
        async def run(**kwargs: Any) -> None:
            chromium: Chromium = kwargs["browser"]
            for attempt in (1, 2):
                if attempt == 2 and "tmp_path" in kwargs:
                    kwargs["tmp_path"] = kwargs["tmp_path"] / "second-try"
                    await asyncio.to_thread(kwargs["tmp_path"].mkdir)
                with chromium.watched(seconds, f"{test.__name__}, try {attempt}") as watch:
                    try:
                        await test(**kwargs)
                        return
                    except Exception:
                        if not watch.fired or attempt == 2:
                            raise
                warnings.warn(
                    f"{test.__name__}: the browser was still busy after {seconds:.0f} s and "
                    "was killed (stacks on stderr); trying once more in a fresh one",
                    BrowserWedged,
                    stacklevel=1,
                )
                await chromium.restart()

        return run

    return decorate


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            tree[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
    return tree


def _descendants(pid: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    tree = _children() if tree is None else tree
    found: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(tree.get(child, []))
    return found


def _process_table(pids: list[int]) -> str:
    """pid, state, CPU seconds and command of each process (from /proc: no ps needed)."""
    ticks = os.sysconf("SC_CLK_TCK")
    lines = ["  pid state  cpu-s command\n"]
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(stat[11]) + int(stat[12])) / ticks
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            lines.append(
                f"{pid:5d} {stat[0]:>5} {cpu:6.1f} {command[:150].decode(errors='replace')}\n"
            )
    return "".join(lines)


def _task_stacks(loop: asyncio.AbstractEventLoop) -> str:
    """Each pending task's coroutine stack; read from another thread, so best effort."""
    lines: list[str] = []
    try:
        for task in list(asyncio.all_tasks(loop)):
            lines.append(f"{task!r}\n")
            for frame in task.get_stack(limit=8):
                code = frame.f_code
                lines.append(f"    {code.co_filename}:{frame.f_lineno} {code.co_name}\n")
    except RuntimeError as error:  # the set changed under us
        lines.append(f"(tasks unreadable: {error})\n")
    return "".join(lines)
