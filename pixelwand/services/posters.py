"""Video posters: one frame of a video, rendered through the image pipeline.

Decoding runs on threads of its own (at most POSTER_THREADS at once, so videos never take
the image pool's threads) under a deadline (PIXELWAND_VIDEO_DECODE_TIMEOUT_SECONDS): a
file that takes longer answers 400 and its thread finishes on its own, bounded by
imaging/video.py's packet limit. On local disk FFmpeg reads the file; on S3 it reads
through `RangeReader`, ranged GETs of what it asks for (the index and one keyframe's
packets), never the whole video.

Memory: the declared frame size is read first and the poster's estimate
(budget.video_frame_memory, ~11 bytes a pixel) is reserved in the process's render budget
like any render; above PIXELWAND_RENDER_MEMORY_BYTES the answer is 400 "image too large to
render" (8K UHD, 35 Mpx, needs ~420 MB and passes the 512 MiB default). A frame that decodes
larger than declared is refused (imaging/video.py), so the reservation holds.
"""

from __future__ import annotations

import asyncio
import io
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pixelwand.errors import BadRequest, StorageUnavailable
from pixelwand.imaging.budget import video_frame_memory
from pixelwand.imaging.errors import ImageTooLargeToRender
from pixelwand.imaging.params import TransformParams
from pixelwand.imaging.pipeline import Rendered, render_image
from pixelwand.ratelimit.allowance import count_render
from pixelwand.runtime import Runtime
from pixelwand.services.records import AssetRecord
from pixelwand.services.rendering import budget_for
from pixelwand.storage import Storage

log = logging.getLogger(__name__)

POSTER_THREADS = 2
_READ_AHEAD = 256 * 1024
_executor = ThreadPoolExecutor(max_workers=POSTER_THREADS, thread_name_prefix="posters")


class RangeReader(io.RawIOBase):
    """A seekable, read-only file over an object in storage, for a thread that is not the
    event loop's: each read is a ranged read run on the loop (at least _READ_AHEAD bytes,
    buffered)."""

    def __init__(
        self, storage: Storage, key: str, size: int, loop: asyncio.AbstractEventLoop, timeout: float
    ) -> None:
        self._storage, self._key, self._size = storage, key, size
        self._loop, self._timeout = loop, timeout
        self._pos = 0
        self._buffer = b""
        self._buffer_start = 0
        # FFmpeg takes a failed read for the end of the file: the caller looks here to tell
        # an outage of the store from a video that does not decode.
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), max(0, self._size - self._pos))
        if wanted == 0:
            return 0
        start = self._pos - self._buffer_start
        if not (start >= 0 and start + wanted <= len(self._buffer)):
            length = max(wanted, _READ_AHEAD)
            future = asyncio.run_coroutine_threadsafe(
                self._storage.read_range(self._key, self._pos, length), self._loop
            )
            try:
                self._buffer = future.result(self._timeout)
            except BaseException as exc:
                future.cancel()
                self.error = exc
                raise
            self._buffer_start = self._pos
            start = 0
        chunk = self._buffer[start : start + wanted]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def _decode_and_render(
    source: Path | RangeReader,
    params: TransformParams,
    at: Any,
    max_pixels: int,
    focal: tuple[float, float] | None,
    duration: float | None,
) -> Rendered:
    from pixelwand.imaging import video

    frame = video.poster_frame(source, at, max_pixels=max_pixels, duration=duration)
    return render_image(frame, params, focal=focal)


def _output_pixels(width: int, height: int, params: TransformParams) -> int:
    if not params.preserve_aspect and params.max_width and params.max_height:
        return params.max_width * params.max_height
    scale = min(1.0, (params.max_width or width) / width, (params.max_height or height) / height)
    return max(1, round(width * scale) * round(height * scale))


async def render_poster(
    runtime: Runtime,
    asset: AssetRecord,
    params: TransformParams,
    at: Any,
    focal: tuple[float, float] | None,
) -> Rendered:
    """The poster frame at `at` (a video.PosterAt) rendered as `params` ask; BadRequest
    for anything the video makes impossible (undecodable, too large, past the end, slow)."""
    from pixelwand.imaging import video

    if not video.available():
        raise BadRequest("video posters need the server's `video` extra (PyAV)")
    settings = runtime.settings
    storage = runtime.storage
    loop = asyncio.get_running_loop()
    path = await storage.local_path(asset.storage_key)

    readers: list[RangeReader] = []

    def source() -> Path | RangeReader:  # each pass reads from the start
        if path is not None:
            return path
        timeout = settings.storage_timeout_seconds
        readers.append(RangeReader(storage, asset.storage_key, asset.size, loop, timeout))
        return readers[-1]

    seconds = settings.video_decode_timeout_seconds
    max_pixels = settings.max_image_pixels
    try:
        size = loop.run_in_executor(_executor, video.frame_size, source())
        width, height = await asyncio.wait_for(size, seconds)
        if width * height > max_pixels:
            raise video.VideoTooLarge()
        needed = video_frame_memory(
            width,
            height,
            output_pixels=_output_pixels(width, height, params),
            output_format=params.format,
        )
        if needed > settings.render_memory_bytes:
            raise ImageTooLargeToRender()
        count_render()
        async with budget_for(runtime).reserve(needed):
            work = loop.run_in_executor(
                _executor,
                _decode_and_render,
                source(),
                params,
                at,
                max_pixels,
                focal,
                asset.duration_seconds,  # for files whose headers carry none
            )
            return await asyncio.wait_for(work, seconds)
    except TimeoutError:
        log.warning("poster of asset %s: no frame within the deadline", asset.id)
        raise BadRequest("could not decode video: no frame within the time limit") from None
    except video.UndecodableVideo as exc:
        if any(reader.error is not None for reader in readers):
            # A failed read is the end of the file to FFmpeg: the store's fault, not the video's.
            raise StorageUnavailable() from None
        log.info("poster of asset %s did not decode: %s", asset.id, exc.detail)
        raise
