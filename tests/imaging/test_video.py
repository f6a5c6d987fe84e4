"""imaging/video.py directly: posterAt parsing, probing, and the bounds on hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelwand.errors import BadRequest
from tests.helpers import make_mp4

video = pytest.importorskip("pixelwand.imaging.video")
pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    path.write_bytes(make_mp4(seconds=2.0, width=320, height=240, fps=10, gop=10))
    return path


@pytest.mark.parametrize(
    ("text", "seconds", "percent", "normalised"),
    [("2.5", 2.5, None, "2.5"), ("0", 0.0, None, "0"), ("25%", None, 25.0, "25"),
     ("100%", None, 100.0, "100"), ("007.50", 7.5, None, "7.5")],
)  # fmt: skip
def test_poster_at_parses(text, seconds, percent, normalised):
    at = video.parse_poster_at(text)
    assert (at.seconds, at.percent) == (seconds, percent)
    assert at.text.rstrip("%") == normalised


@pytest.mark.parametrize(
    "text", ["", "1.", ".5", "1e3", "-1", "+1", "1 ", "\u0661", "100.5%", "inf"]
)
def test_poster_at_refuses(text):
    with pytest.raises(BadRequest, match="posterAt"):
        video.parse_poster_at(text)


def test_probe_and_poster(clip):
    facts = video.probe(clip)
    assert (facts.video_codec, facts.width, facts.height) == ("h264", 320, 240)
    frame = video.poster_frame(clip, video.PosterAt(seconds=1.9), max_pixels=10**8)
    assert (frame.width, frame.height) == (320, 240)
    assert frame.avg() == pytest.approx(100, abs=6)  # the keyframe at 1.0 s, not frame 19
    with pytest.raises(video.PosterPastEnd):
        video.poster_frame(clip, video.PosterAt(seconds=2.5), max_pixels=10**8)


def test_frames_over_the_pixel_budget_are_refused_before_decoding(clip):
    with pytest.raises(video.VideoTooLarge):
        video.poster_frame(clip, video.PosterAt(percent=0), max_pixels=320 * 240 - 1)


def test_garbage_is_undecodable(tmp_path):
    path = tmp_path / "x.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 40)
    with pytest.raises(video.UndecodableVideo):
        video.probe(path)
    with pytest.raises(video.UndecodableVideo):
        video.poster_frame(path, video.PosterAt(percent=25), max_pixels=10**8)


_PEAK_MEMORY_SCRIPT = """
import re, sys
from pathlib import Path
from pixelwand.imaging import video


def peak_mb():  # this process's own high-water mark (ru_maxrss carries the parent's over exec)
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) // 1024


path = Path(sys.argv[1])
video.probe(path)  # FFmpeg's own start-up allocations are not the frame's
before = peak_mb()
try:
    video.poster_frame(path, video.PosterAt(percent=50), max_pixels=10**8)
except video.UndecodableVideo:
    print("refused")
print(peak_mb() - before)
"""


def test_a_frame_larger_than_declared_is_refused_before_it_is_decoded(tmp_path):
    """The memory reserved for a poster is the declared size's; a file declaring 320x240
    whose later frames are 8000x6000 was refused only after FFmpeg had decoded one (73 MB
    here, and up to FFmpeg's own limit of ~268 Mpx a frame)."""
    import subprocess
    import sys

    from tests.helpers import make_growing_mjpeg

    path = tmp_path / "grows.mp4"
    path.write_bytes(make_growing_mjpeg(small=(320, 240), large=(8000, 6000)))
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_MEMORY_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    refused, growth_mb = done.stdout.split()
    assert refused == "refused"
    assert int(growth_mb) < 20, growth_mb  # one 8000x6000 4:2:0 frame is 72 MB


@pytest.mark.parametrize(
    ("codec", "size"),
    [("libx264", (270, 480)), ("libx264", (1922, 1082)), ("mpeg4", (66, 34)),
     ("mpeg4", (100, 60)), ("libvpx-vp9", (1080, 1920)), ("mjpeg", (66, 34))],
)  # fmt: skip
def test_frames_of_the_declared_size_decode_whatever_their_alignment(tmp_path, codec, size):
    """FFmpeg counts more than the declared pixels against its bound (aligned strides, whole
    macroblocks; MPEG-4 Part 2 a floor of its own): those frames are not refused."""
    import io

    import av

    from tests.helpers import encode_frames, grey_frame

    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg has no {codec} encoder")
    width, height = size
    fmt = "webm" if codec == "libvpx-vp9" else "mp4"
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        if codec == "libvpx-vp9":
            stream.options = {"deadline": "realtime", "cpu-used": "8"}
        encode_frames(container, stream, (grey_frame(width, height, 20 * i) for i in range(3)))
    path = tmp_path / f"clip.{fmt}"
    path.write_bytes(buffer.getvalue())
    frame = video.poster_frame(path, video.PosterAt(percent=50), max_pixels=10**8)
    assert (frame.width, frame.height) == size
