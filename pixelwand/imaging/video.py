"""Videos through PyAV (FFmpeg): probe their facts and decode one poster frame.

Decoding only: nothing here encodes video. Every function is blocking and must run off the
event loop (services/posters.py runs them on their own threads with a deadline).

Untrusted input is bounded three ways: the declared frame size is checked against the
pixel budget before a single packet is decoded (and each decoded frame again, since a
stream may change size midway); decoding stops after MAX_PACKETS demuxed packets without a
frame; FFmpeg decodes on one thread (one frame in flight, no per-thread frame buffers).
Any FFmpeg error, or anything else a hostile file makes the bindings raise, is an
UndecodableVideo, never a crash of the request.

A poster is the keyframe at or before the asked-for time (a seek, then the first frame
decoded): ~70 ms for a 1080p H.264 frame against 200-550 ms to decode forward to the exact
frame (measured), and what Cloudinary and Mux do too for speed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyvips

from pixelwand.errors import BadRequest

log = logging.getLogger(__name__)

# Packets read after the seek before giving up on a frame: a few seconds of video at any
# sensible frame rate, and the bound on time spent on a file that never yields one.
MAX_PACKETS = 2_000
# Packets read to find the duration of a file whose headers do not say (probe).
MAX_DURATION_PACKETS = 2_000_000
# Pixels a side FFmpeg may add to the declared frame size when it checks a frame's buffer
# against `max_pixels` (stride alignment up to 64, 64-pixel coding tree blocks): twice that.
_CODED_MARGIN = 128
# FFmpeg checks some of a decoder's own buffers against `max_pixels` too: MPEG-4 Part 2
# needs 53,760 whatever its frame size (measured here). 1 Mpx costs nothing to allow.
_MIN_PIXEL_BOUND = 1 << 20
# `posterAt`: ASCII seconds (`2.5`) or a percentage of the duration (`25%`).
_POSTER_AT = re.compile(r"([0-9]{1,9})(\.[0-9]{1,6})?(%?)")
DEFAULT_POSTER_AT = "25%"


class UndecodableVideo(BadRequest):
    """The bytes are not a video FFmpeg can decode a frame from (`detail` is for logs)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("could not decode video")
        self.detail = detail


class VideoTooLarge(BadRequest):
    """The video's frames are larger than the pixel budget."""

    def __init__(self) -> None:
        super().__init__("video too large to render")


class PosterPastEnd(BadRequest):
    """posterAt is after the end of the video."""

    def __init__(self, duration: float) -> None:
        super().__init__(f"posterAt is past the end of the video ({duration:.3f} seconds)")
        self.duration = duration


@dataclasses.dataclass(frozen=True, slots=True)
class PosterAt:
    """Where to take a poster: `seconds` into the video, or `percent` of its duration."""

    seconds: float | None = None
    percent: float | None = None

    @property
    def text(self) -> str:
        """Normalised, for rendition cache keys: `2.5`, `25%`."""
        if self.percent is not None:
            return f"{_plain(self.percent)}%"
        return _plain(self.seconds or 0.0)

    def target(self, duration: float | None) -> float:
        """Seconds from the start; PosterPastEnd when past `duration` (if known)."""
        if self.percent is not None:
            return 0.0 if duration is None else duration * self.percent / 100
        seconds = self.seconds or 0.0
        if duration is not None and seconds > duration:
            raise PosterPastEnd(duration)
        return seconds


def _plain(value: float) -> str:
    return format(Decimal(repr(value)).normalize(), "f")


def parse_poster_at(value: object) -> PosterAt | None:
    """`posterAt` from client input (None: not given). BadRequest names the field."""
    if value is None:
        return None
    match = _POSTER_AT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise BadRequest('posterAt must be seconds ("2.5") or a percentage ("25%")')
    number = float(match.group(1) + (match.group(2) or ""))
    if match.group(3):
        if number > 100:
            raise BadRequest("posterAt must be a percentage between 0% and 100%")
        return PosterAt(percent=number)
    return PosterAt(seconds=number)


@dataclasses.dataclass(frozen=True, slots=True)
class VideoFacts:
    duration_seconds: float | None
    video_codec: str | None
    frame_rate: float | None
    width: int | None
    height: int | None


def available() -> bool:
    """Whether PyAV is installed (the `video` extra); without it videos get no facts and
    no posters."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


# Container options for opening: codec parameters come from the container's headers (MP4,
# QuickTime, WebM all carry them), so FFmpeg need not decode ahead to guess them; ~10 ms
# less per poster (measured on 1080p MP4). A stream whose size is still unknown is opened
# again with FFmpeg's defaults.
_FAST_OPEN = {"analyzeduration": "0", "probesize": "262144"}


def _open(source: Path | io.IOBase, *, fast: bool = True) -> Any:
    import av

    try:
        if not isinstance(source, Path):
            source.seek(0)
        target = str(source) if isinstance(source, Path) else source
        options = _FAST_OPEN if fast else {}
        return av.open(target, mode="r", metadata_errors="ignore", options=options)
    except Exception as exc:  # FFmpegError and whatever a hostile header provokes
        raise UndecodableVideo(str(exc)[:200]) from None


def _open_video(source: Path | io.IOBase) -> tuple[Any, Any]:
    """(container, its first video stream), opened fast if that tells the frame size."""
    container = _open(source)
    try:
        stream = _video_stream(container)
        if stream.codec_context.width and stream.codec_context.height:
            return container, stream
    except UndecodableVideo:
        pass
    container.close()
    container = _open(source, fast=False)
    try:
        return container, _video_stream(container)
    except BaseException:
        container.close()
        raise


@contextlib.contextmanager
def _opened(path: Path | io.IOBase) -> Iterator[tuple[Any, Any]]:
    """(container, video stream), closed afterwards; anything the bindings raise inside is
    an UndecodableVideo."""
    container, stream = _open_video(path)
    try:
        yield container, stream
    except (UndecodableVideo, VideoTooLarge, PosterPastEnd):
        raise
    except Exception as exc:
        raise UndecodableVideo(str(exc)[:200]) from None
    finally:
        container.close()


def _video_stream(container: Any) -> Any:
    if not container.streams.video:
        raise UndecodableVideo("no video stream")
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1
    return stream


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        value = float(stream.duration * stream.time_base)
        if value > 0:
            return value
    if container.duration:
        import av

        return float(container.duration) / av.time_base
    return None


def _demuxed_duration(container: Any, stream: Any) -> float | None:
    """The end of the last packet, read through the file without decoding: for containers
    whose headers carry no duration (browsers' MediaRecorder WebM, live recordings). At most
    MAX_DURATION_PACKETS packets (hours of video; ~2 ms a thousand here)."""
    if stream.time_base is None:
        return None
    end = None
    for count, packet in enumerate(container.demux(stream)):
        if count >= MAX_DURATION_PACKETS:
            return None
        if packet.pts is not None:
            packet_end = packet.pts + (packet.duration or 0)
            end = packet_end if end is None else max(end, packet_end)
    if end is None:
        return None
    value = float((end - (stream.start_time or 0)) * stream.time_base)
    return value if value > 0 else None


def probe(path: Path | io.IOBase) -> VideoFacts:
    """Duration (from the headers, else from the packets), codec (FFmpeg's name of the
    codec, not the decoder's), frame rate and coded size."""
    with _opened(path) as (container, stream):
        codec = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        duration = _duration(container, stream)
        if duration is None:
            duration = _demuxed_duration(container, stream)
        return VideoFacts(
            duration_seconds=duration,
            video_codec=_codec_name(codec),
            frame_rate=float(rate) if rate else None,
            width=codec.width or None,
            height=codec.height or None,
        )


def _codec_name(codec: Any) -> str | None:
    """FFmpeg's name of the codec (`av1`), not of the decoder opened for it (`libdav1d`)."""
    described = getattr(codec, "codec", None)
    return getattr(described, "canonical_name", None) or codec.name or None


def frame_size(path: Path | io.IOBase) -> tuple[int, int]:
    """The declared (coded) frame size, from the headers: what a poster's memory is estimated
    from (budget.video_frame_memory). UndecodableVideo when there is none."""
    with _opened(path) as (_, stream):
        codec = stream.codec_context
        if not codec.width or not codec.height:
            raise UndecodableVideo("no frame size")
        return int(codec.width), int(codec.height)


def poster_frame(
    path: Path | io.IOBase, at: PosterAt, *, max_pixels: int, duration: float | None = None
) -> pyvips.Image:
    """The keyframe at or before `at`, as an 8-bit sRGB image, upright. `duration` (seconds,
    the asset's fact) stands in when the headers carry none.

    Raises UndecodableVideo (also for a frame larger than the declared size, which the
    caller's memory reservation was made for), VideoTooLarge (declared or decoded size over
    `max_pixels`) and PosterPastEnd.
    """
    with _opened(path) as (container, stream):
        codec = stream.codec_context
        # Read now: the decoder updates codec.width/height to each frame it decodes, so a
        # comparison with them afterwards would let any frame through.
        declared = (codec.width or 0) * (codec.height or 0)
        if not declared:
            raise UndecodableVideo("no frame size")
        if declared > max_pixels:
            raise VideoTooLarge()
        # FFmpeg itself refuses a larger frame before allocating it: the checks below come
        # after the decode, whose buffers (73 MB for an 8000x6000 Motion-JPEG frame in a
        # file declaring 320x240) the caller's memory reservation never counted. The margin
        # is for what FFmpeg counts beyond the declared size: the width rounded up for SIMD
        # strides, coded sizes rounded up to whole macroblocks or coding tree blocks.
        bound = max(
            (codec.width + _CODED_MARGIN) * (codec.height + _CODED_MARGIN), _MIN_PIXEL_BOUND
        )
        codec.options = {**codec.options, "max_pixels": str(bound)}
        target = at.target(_duration(container, stream) or duration)
        if target > 0 and stream.time_base:
            start = stream.start_time or 0
            container.seek(
                start + int(target / stream.time_base),
                stream=stream,
                backward=True,
                any_frame=False,
            )
        for count, packet in enumerate(container.demux(stream)):
            if count >= MAX_PACKETS:
                break
            for frame in packet.decode():
                if frame.width * frame.height > max_pixels:
                    raise VideoTooLarge()
                if frame.width * frame.height > declared:
                    # Memory was reserved for the declared size (services/posters.py).
                    raise UndecodableVideo("a frame is larger than the declared size")
                return _to_vips(frame)
        raise UndecodableVideo("no frame decoded")


def _to_vips(frame: Any) -> pyvips.Image:
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    width, height, stride = rgb.width, rgb.height, plane.line_size
    data = bytes(plane)
    if stride != width * 3:
        view = memoryview(data)
        data = b"".join(view[i * stride : i * stride + width * 3] for i in range(height))
    image = pyvips.Image.new_from_memory(data, width, height, 3, "uchar").copy(
        interpretation="srgb"
    )
    # The display matrix's angle is counter-clockwise; libvips' rot turns clockwise.
    turn = round(-(getattr(frame, "rotation", 0) or 0) / 90) % 4
    if turn:
        image = image.rot(("d0", "d90", "d180", "d270")[turn])
    return image
