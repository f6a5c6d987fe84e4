from __future__ import annotations

import asyncio
import threading
import time

import pytest
import pyvips

from pixelwand.imaging.params import parse_transform
from pixelwand.imaging.pipeline import render
from pixelwand.imaging.pool import ImagePool, available_cores

from .conftest import Images


@pytest.fixture
def pool():
    pool = ImagePool(workers=2)
    yield pool
    pool.close()


async def test_work_runs_off_the_event_loop_thread(pool: ImagePool) -> None:
    loop_thread = threading.get_ident()
    worker_thread = await pool.run(threading.get_ident)
    assert worker_thread != loop_thread
    name = await pool.run(lambda: threading.current_thread().name)
    assert name.startswith("imaging")


async def test_loop_stays_responsive_while_workers_block(pool: ImagePool) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await pool.run(time.sleep, 0.3)
    task.cancel()
    assert ticks >= 10


async def test_at_most_workers_run_at_once(pool: ImagePool) -> None:
    running = peak = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    await asyncio.gather(*(pool.run(job) for _ in range(6)))
    assert peak == 2


async def test_render_through_the_pool_with_keywords(pool: ImagePool, images: type[Images]) -> None:
    source = images.encode(images.solid(300, 200), ".jpg")
    out = await pool.run(
        render,
        source,
        parse_transform(format="webp", max_width=30),
        source_mime="image/jpeg",
        max_pixels=10**6,
    )
    decoded = images.decode(out.data)
    assert (decoded.width, decoded.height, out.format) == (30, 20, "WEBP")


async def test_exceptions_reach_the_caller(pool: ImagePool) -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await pool.run(fail)


async def test_closed_pool_refuses_work() -> None:
    pool = ImagePool(workers=1)
    pool.close()
    with pytest.raises(RuntimeError):
        await pool.run(int)


def test_vips_threads_divide_the_cores() -> None:
    cores = available_cores()
    ImagePool(workers=cores).close()
    assert pyvips.concurrency_get() == 1
    ImagePool(workers=1).close()
    assert pyvips.concurrency_get() == cores


def test_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        ImagePool(workers=0)
