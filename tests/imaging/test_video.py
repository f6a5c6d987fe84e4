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
