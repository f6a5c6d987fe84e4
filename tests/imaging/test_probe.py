from __future__ import annotations

from pathlib import Path

import pytest
from pyvips import GValue

from pixelwand.errors import BadRequest
from pixelwand.imaging.probe import UndecodableImage, image_dimensions

from .conftest import Images


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".gif", ".tif", ".avif"])
def test_dimensions_from_bytes_and_path(images: type[Images], suffix: str, tmp_path: Path) -> None:
    data = images.encode(images.solid(70, 30), suffix)
    assert image_dimensions(data) == (70, 30)
    path = tmp_path / f"image{suffix}"
    path.write_bytes(data)
    assert image_dimensions(path) == (70, 30)


def test_dimensions_from_a_files_head(images: type[Images]) -> None:
    data = images.encode(images.noise(300, 200), ".jpg")
    assert image_dimensions(data[:4096]) == (300, 200)


def test_dimensions_are_upright(images: type[Images]) -> None:
    stored = images.solid(70, 30).copy()
    stored.set_type(GValue.gint_type, "orientation", 6)
    assert image_dimensions(images.encode(stored, ".jpg")) == (30, 70)


def test_gif_dimensions_are_one_frame(images: type[Images]) -> None:
    frames = images.solid(30, 20).join(images.solid(30, 20), "vertical").copy()
    frames.set_type(GValue.gint_type, "page-height", 20)
    assert image_dimensions(images.encode(frames, ".gif")) == (30, 20)


def test_undecodable_is_a_bad_request_with_a_safe_message(tmp_path: Path) -> None:
    with pytest.raises(UndecodableImage, match=r"^could not decode image$") as caught:
        image_dimensions(b"not an image")
    assert isinstance(caught.value, BadRequest)
    with pytest.raises(UndecodableImage, match=r"^could not decode image$"):
        image_dimensions(tmp_path / "secret-name.png")  # no path leaks into the message
