"""A bounded pool of imaging threads; libvips releases the GIL, so threads use every core.

Each libvips operation also runs its own worker threads (`concurrency`, default = cores). With
N pool threads that would be N x cores threads fighting over the cores, so the pool divides the
cores between its workers. Measured on two cores, 6000x4000 JPEG → 800x800:

    workers x vips threads   JPEG img/s   WEBP img/s   AVIF (effort 3) img/s
    1 x 2                       9.3          6.1          3.0
    2 x 1                      16.7         10.9          4.3
    2 x 2                      15.9         11.6          3.6
    4 x 1                      16.9         11.6           -

JPEG shrink-on-load decoding is single-threaded, so parallel images, not parallel tiles, fill
the cores; libaom does use the vips threads, but two images at once still beat one image on two
threads. Hence one image per core, one vips thread each.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import pyvips

from pixelwand.imaging.loaders import restrict_loaders

P = ParamSpec("P")
T = TypeVar("T")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class ImagePool:
    """Runs blocking imaging calls on `workers` threads, never on the event loop.

    Work already started finishes even if its awaiting task is cancelled (libvips cannot be
    interrupted); the pool bounds how much of it there can be.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("an image pool needs at least one worker")
        restrict_loaders()
        # Process-wide: libvips has one concurrency setting, read when an operation starts.
        pyvips.concurrency_set(max(1, available_cores() // workers))
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imaging")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on a pool thread; its exceptions propagate to the caller."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self, wait: bool = True) -> None:
        """Drop queued work and refuse new work; with `wait`, block until running work ends."""
        self._executor.shutdown(wait=wait, cancel_futures=True)
