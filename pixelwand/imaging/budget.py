"""Memory per render, decided from the header before a pixel is decoded; and the process's
total, shared by concurrent renders.

The pixel limit counts pixels, not memory: a 779 KB PNG of 10,000,000 x 10 RGBA16 pixels took
14 GB to shrink to 800 wide, because a format without shrink-on-load is decoded at full width
and the resize keeps as many full-width lines in flight as one output line needs (its
vertical shrink factor). `render_memory` estimates a render's peak from what the header says:

- fixed: libvips, codec state and the encoded output (FIXED_BYTES);
- decode: loaders that decode a whole frame (GIF, WebP, AVIF/HEIF, TIFF, interlaced PNG;
  progressive JPEG keeps every coefficient) hold it; line loaders (PNG, JPEG) hold the lines
  one output line needs, about LINES_PER_SHRINK x the vertical shrink factor, at the width
  after shrink-on-load (JPEG: 1/2/4/8; WebP: any scale);
- resize: float lines of the loaded width (RESIZE_LINES of bands x 4 bytes);
- encode: JPEG and PNG stream (JPEG's optimised tables hold ~5.5 bytes a pixel up to 4 Mpx);
  libwebp and libheif take the whole output frame and their own copies.

The constants were fitted to peak RSS measured on this libvips (8.18) with one vips thread,
with a margin (measured vs estimated, MB): 400,000x10 RGBA16 PNG → WEBP 800: 441 vs 490;
400,000x256 RGBA16 PNG: 1,509 vs 1,670; 100,000x1,000 RGB PNG → JPEG: 234 vs 341; 6000x4000
PNG → JPEG 800: 38 vs 48; 6000x4000 JPEG → WEBP unresized: 114 vs 177; 6000x4000 PNG →
AVIF unresized: 332 vs 432. docs/hardening.md has the rest.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
from collections.abc import AsyncIterator

import pyvips

from pixelwand.errors import RenderQueueFull

MIB = 1024 * 1024
FIXED_BYTES = 32 * MIB
LINES_PER_SHRINK = 4
EXTRA_LINES = 1024  # measured: ~500-900 full-width lines stay in flight (libvips line caches)
LINE_MARGIN = 1.5
RESIZE_LINES = 64
RESIZE_MARGIN = 1.5  # alpha is premultiplied: a second float copy of the lines
# Bytes per output pixel held by encoders that take whole frames (measured, with margin).
ENCODER_BYTES_PER_PIXEL = {"WEBP": 6.0, "AVIF": 16.0}
JPEG_OPTIMIZE_BYTES_PER_PIXEL = 5.5
JPEG_OPTIMIZE_MAX_PIXELS = 4_000_000  # pipeline.JPEG_OPTIMIZE_MAX_PIXELS
# Largest side each encoder writes (pipeline._MAX_SIDE): fit mode shrinks to it.
_MAX_SIDE = {"JPEG": 65_500, "PNG": 10_000_000, "WEBP": 16_383, "AVIF": 16_384}
_SAMPLE_BYTES = {
    "uchar": 1,
    "char": 1,
    "ushort": 2,
    "short": 2,
    "uint": 4,
    "int": 4,
    "float": 4,
    "complex": 8,
    "double": 8,
    "dpcomplex": 16,
}
# What a header probe (finalize) may take: header parsing only, no pixels.
PROBE_BYTES = 16 * MIB
# A video poster: FFmpeg's decoded frame and reference buffers, the RGB copy PyAV makes and
# libvips' own copy. Measured peak growth (H.264, one decoder thread): 1920x1080 38 MiB,
# 3840x2160 88 MiB, 8192x4320 304 MiB (8.6 bytes a pixel); 11 with margin.
VIDEO_BYTES_PER_PIXEL = 11.0


def video_frame_memory(
    width: int, height: int, *, output_pixels: int, output_format: str | None
) -> int:
    """Estimated peak bytes of decoding one frame of `width` x `height` and encoding
    `output_pixels` of it as `output_format` (posters: JPEG unless asked otherwise)."""
    per_output_pixel = ENCODER_BYTES_PER_PIXEL.get(
        output_format or "JPEG", JPEG_OPTIMIZE_BYTES_PER_PIXEL
    )
    decode = width * height * VIDEO_BYTES_PER_PIXEL
    return FIXED_BYTES + int(decode + output_pixels * per_output_pixel)


def render_memory(
    header: pyvips.Image,
    *,
    max_width: int | None,
    max_height: int | None,
    preserve_aspect: bool,
    output_format: str,
) -> int:
    """Estimated peak bytes of rendering `header`'s image as asked (see the module doc)."""
    width, height = header.width, header.height
    bands = header.bands
    sample = _SAMPLE_BYTES.get(header.format, 8)
    if header.get_typeof("orientation") and header.get("orientation") in (5, 6, 7, 8):
        up_w, up_h = height, width
    else:
        up_w, up_h = width, height
    # Scale and output size, as pipeline._shrink asks thumbnail for them.
    limit = _MAX_SIDE.get(output_format, 16_384)
    if preserve_aspect:
        box_w = min(max_width or limit, limit)
        box_h = min(max_height or limit, limit)
        scale = min(1.0, box_w / up_w, box_h / up_h)
        out_w, out_h = max(1, round(up_w * scale)), max(1, round(up_h * scale))
    else:
        box_w, box_h = max_width or up_w, max_height or up_h
        scale = max(box_w / up_w, box_h / up_h)
        out_w, out_h = box_w, box_h
    shrink = 1.0 / scale if scale < 1 else 1.0

    loader = header.get("vips-loader") if header.get_typeof("vips-loader") else ""
    # Width and height as loaded (shrink-on-load), in source orientation.
    factor: float
    if loader.startswith("jpegload"):
        factor = next(f for f in (8, 4, 2, 1) if f <= shrink)
    elif loader.startswith("webpload"):
        factor = max(1.0, shrink)
    else:
        factor = 1.0
    load_w, load_h = math.ceil(width / factor), math.ceil(height / factor)
    line = load_w * bands * sample

    whole_frame = loader.startswith(("gifload", "webpload", "heifload", "tiffload")) or _flag(
        header, "interlaced"
    )
    if loader.startswith("gifload"):
        decode = load_w * load_h * 4  # libnsgif decodes the frame as RGBA
    elif loader.startswith("heifload"):
        decode = int(load_w * load_h * bands * sample * 2.5)  # YUV planes and the RGB frame
    elif whole_frame:
        decode = int(line * load_h * LINE_MARGIN)
    else:
        lines = min(load_h, LINES_PER_SHRINK * math.ceil(shrink / factor) + EXTRA_LINES)
        decode = int(line * lines * LINE_MARGIN)
    if _flag(header, "jpeg-multiscan"):
        decode += width * height * bands * 2  # progressive: every coefficient, full size
    resize = int(load_w * max(bands, 3) * 4 * RESIZE_LINES * RESIZE_MARGIN)

    out_px = out_w * out_h
    if output_format in ENCODER_BYTES_PER_PIXEL:
        encode = int(out_px * ENCODER_BYTES_PER_PIXEL[output_format])
    elif output_format == "JPEG" and out_px <= JPEG_OPTIMIZE_MAX_PIXELS:
        encode = int(out_px * JPEG_OPTIMIZE_BYTES_PER_PIXEL)
    else:
        encode = out_w * 4 * RESIZE_LINES
    return FIXED_BYTES + decode + resize + encode


def _flag(header: pyvips.Image, name: str) -> bool:
    return bool(header.get_typeof(name)) and bool(header.get(name))


class RenderBudget:
    """Bytes of render memory shared by the process's concurrent renders.

    A render reserves its estimate before it starts and releases it when it ends. Renders
    that do not fit wait their turn in FIFO order (a small render does not overtake a large
    one, so large ones are not starved); at most `queue_length` wait, each at most
    `wait_seconds`. Past either: RenderQueueFull (503). No render asks for more than
    `per_render`, which is at most `total`, so every render can eventually run.
    """

    def __init__(
        self, total: int, per_render: int, *, queue_length: int, wait_seconds: float
    ) -> None:
        self.total = total
        self.per_render = min(per_render, total)
        self.queue_length = queue_length
        self.wait_seconds = wait_seconds
        self.in_use = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @contextlib.asynccontextmanager
    async def reserve(self, nbytes: int) -> AsyncIterator[None]:
        nbytes = max(1, min(nbytes, self.total))
        await self._acquire(nbytes)
        try:
            yield
        finally:
            self.in_use -= nbytes
            self._wake()

    async def _acquire(self, nbytes: int) -> None:
        if not self._waiters and self.in_use + nbytes <= self.total:
            self.in_use += nbytes
            return
        if len(self._waiters) >= self.queue_length:
            raise RenderQueueFull()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (nbytes, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), self.wait_seconds)
        except TimeoutError:
            if future.done() and not future.cancelled():
                return  # granted just as the wait ran out: keep it
            self._drop(entry)
            raise RenderQueueFull() from None
        except BaseException:
            if future.done() and not future.cancelled():
                self.in_use -= nbytes  # granted, but the caller is gone
                self._wake()
            else:
                self._drop(entry)
            raise

    def _drop(self, entry: tuple[int, asyncio.Future[None]]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(entry)
        entry[1].cancel()
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            nbytes, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if self.in_use + nbytes > self.total:
                return
            self._waiters.popleft()
            self.in_use += nbytes
            future.set_result(None)
