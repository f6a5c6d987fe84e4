"""One render of one image within the process's memory budget (export URLs and ZIP entries).

The estimate comes from the header (imaging/budget.py), read on the image pool; an image
whose render would need more than one render may use is refused with 400 before a pixel is
decoded; otherwise the render waits for its bytes in the process's budget (a bounded FIFO
queue, then 503) and runs on the image pool.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pixelwand.imaging.budget import PROBE_BYTES, RenderBudget
from pixelwand.imaging.errors import ImageTooLargeToRender
from pixelwand.imaging.params import TransformParams
from pixelwand.imaging.perceptual import Optimised, render_perceptual
from pixelwand.imaging.pipeline import memory_needed, render
from pixelwand.ratelimit.allowance import count_render
from pixelwand.runtime import Runtime
from pixelwand.services.rendition_facts import fixed_quality

T = TypeVar("T")


def budget_for(runtime: Runtime) -> RenderBudget:
    settings = runtime.settings
    if runtime.render_budget is None:
        runtime.render_budget = RenderBudget(
            settings.render_memory_total_bytes,
            settings.render_memory_bytes,
            queue_length=settings.render_queue_length,
            wait_seconds=settings.render_queue_seconds,
        )
    return runtime.render_budget


async def render_within_budget(
    runtime: Runtime,
    path: Path,
    params: TransformParams,
    source_mime: str,
    focal: tuple[float, float] | None = None,
) -> Optimised:
    """The rendition and the facts it reports (quality used, score reached)."""
    settings = runtime.settings
    needed = await runtime.run_blocking(
        _memory_needed, path, params, source_mime, settings.max_image_pixels
    )
    if needed > settings.render_memory_bytes:
        raise ImageTooLargeToRender()
    count_render()
    async with budget_for(runtime).reserve(needed):
        return await runtime.run_blocking(
            _render, path, params, source_mime, settings.max_image_pixels, focal
        )


async def run_probe(runtime: Runtime, fn: Callable[..., T], *args: Any) -> T:
    """A header probe (finalize's dimensions): no pixels are decoded, but it runs on the image
    pool and counts in the budget like a small render, so probes cannot crowd renders out."""
    async with budget_for(runtime).reserve(PROBE_BYTES):
        return await runtime.run_blocking(fn, *args)


def _memory_needed(path: Path, params: TransformParams, mime: str, max_pixels: int) -> int:
    return memory_needed(path, params, source_mime=mime, max_pixels=max_pixels)


def _render(
    path: Path, params: TransformParams, mime: str, max_pixels: int, focal=None
) -> Optimised:
    if params.perceptual is not None:  # docs/perceptual.md
        return render_perceptual(path, params, source_mime=mime, max_pixels=max_pixels, focal=focal)
    rendered = render(path, params, source_mime=mime, max_pixels=max_pixels, focal=focal)
    return Optimised(rendered, fixed_quality(rendered, params), None, 1)
