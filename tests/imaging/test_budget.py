"""The render-memory estimate (from headers) and the process's shared budget."""

from __future__ import annotations

import asyncio

import pytest
import pyvips

from pixelwand.errors import RenderQueueFull
from pixelwand.imaging.budget import RenderBudget, render_memory
from tests.imaging.hostile_media import png_declaring, png_shape

MIB = 1024 * 1024
BUDGET = 512 * MIB


def _estimate(data: bytes, output_format: str = "WEBP", max_width: int | None = 800) -> int:
    header = pyvips.Image.new_from_buffer(data, "", access="sequential")
    return render_memory(
        header,
        max_width=max_width,
        max_height=None,
        preserve_aspect=True,
        output_format=output_format,
    )


@pytest.mark.parametrize(
    ("width", "height", "depth", "colour"),
    [(10_000_000, 10, 16, 6), (1_081_440, 64, 16, 6), (25_000_000, 4, 8, 0)],
)
def test_the_issues_shapes_are_over_the_default_budget(width, height, depth, colour) -> None:
    small = pyvips.Image.black(8, 8).cast("uchar").pngsave_buffer()
    for data in (
        png_shape(width, height, depth, colour),
        png_declaring(small, width, height, depth, colour),
    ):
        assert _estimate(data) > BUDGET
        assert _estimate(data, "JPEG", None) > BUDGET


def test_ordinary_images_are_well_under_it() -> None:
    photo = pyvips.Image.black(6000, 4000, bands=3).cast("uchar").copy(interpretation="srgb")
    assert _estimate(photo.jpegsave_buffer(), "WEBP", 800) < 128 * MIB
    assert _estimate(photo.pngsave_buffer(compression=1), "JPEG", 800) < 128 * MIB
    assert _estimate(photo.jpegsave_buffer(), "WEBP", None) < 256 * MIB
    assert _estimate(photo.jpegsave_buffer(), "JPEG", None) < 128 * MIB


async def test_budget_queues_in_order_and_refuses_past_the_queue() -> None:
    budget = RenderBudget(100, 100, queue_length=2, wait_seconds=5)
    order: list[str] = []
    release = asyncio.Event()

    async def hold(name: str, nbytes: int) -> None:
        async with budget.reserve(nbytes):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(hold("a", 80))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(hold("b", 50)), asyncio.create_task(hold("c", 10))]
    await asyncio.sleep(0)
    assert budget.in_use == 80 and budget.waiting == 2  # c fits, but does not overtake b
    with pytest.raises(RenderQueueFull):
        async with budget.reserve(1):
            pass
    release.set()
    await asyncio.gather(first, *waiting)
    assert order == ["a", "b", "c"] and budget.in_use == 0 and budget.waiting == 0


async def test_budget_wait_is_bounded() -> None:
    budget = RenderBudget(10, 10, queue_length=4, wait_seconds=0.05)
    async with budget.reserve(10):
        with pytest.raises(RenderQueueFull):
            async with budget.reserve(5):
                pass
        assert budget.waiting == 0
    assert budget.in_use == 0
    async with budget.reserve(10):  # usable again
        assert budget.in_use == 10


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    budget = RenderBudget(10, 10, queue_length=4, wait_seconds=5)
    async with budget.reserve(10):
        task = asyncio.create_task(budget.reserve(10).__aenter__())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert budget.in_use == 0 and budget.waiting == 0
