"""Hostile and broken inputs: refused with a 400-class error, quickly, without decoding."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyvips import GValue

from pixelwand.errors import BadRequest
from pixelwand.imaging.errors import ImageTooLarge, UndecodableImage
from pixelwand.imaging.loaders import ALLOWED_LOADERS, restrict_loaders
from pixelwand.imaging.params import parse_transform
from pixelwand.imaging.pipeline import render
from pixelwand.imaging.probe import image_dimensions

from .conftest import Images

BUDGET = 100_000_000


def _render(source: bytes | Path, mime: str, max_pixels: int = BUDGET, **params: object) -> None:
    render(
        source,
        parse_transform(**params),  # type: ignore[arg-type]
        source_mime=mime,
        max_pixels=max_pixels,
    )


def test_errors_are_bad_requests_with_safe_messages() -> None:
    assert issubclass(ImageTooLarge, BadRequest)
    assert issubclass(UndecodableImage, BadRequest)
    assert ImageTooLarge().message == "image too large"
    assert UndecodableImage().message == "could not decode image"
    assert UndecodableImage().status == 400


# --- decompression bombs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "mime"), [("png", "image/png"), ("jpeg", "image/jpeg"), ("gif", "image/gif")]
)
@pytest.mark.parametrize("output", [None, "webp"])
def test_bomb_refused_from_header(
    images: type[Images], kind: str, mime: str, output: str | None
) -> None:
    bomb = getattr(images, f"{kind}_declaring")(30000, 30000)
    assert len(bomb) < 1000
    assert image_dimensions(bomb) == (30000, 30000)
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge, match=r"^image too large$"):
        _render(bomb, mime, format=output, max_width=100)
    assert time.perf_counter() - started < 0.5


def test_pixel_budget_is_inclusive(images: type[Images]) -> None:
    source = images.encode(images.solid(64, 48), ".png")
    _render(source, "image/png", max_pixels=64 * 48)
    with pytest.raises(ImageTooLarge):
        _render(source, "image/png", max_pixels=64 * 48 - 1)


def test_gif_budget_counts_one_frame(images: type[Images]) -> None:
    frames = images.solid(30, 20).join(images.solid(30, 20, Images.BLUE), "vertical").copy()
    frames.set_type(GValue.gint_type, "page-height", 20)
    _render(images.encode(frames, ".gif"), "image/gif", max_pixels=30 * 20)


# --- corrupt and truncated --------------------------------------------------------------


@pytest.fixture(scope="module")
def truncated_jpeg(images: type[Images]) -> bytes:
    whole = images.encode(images.noise(800, 600), ".jpg", Q=90)
    return whole[: len(whole) // 2]


@pytest.mark.parametrize("params", [{}, {"max_width": 100}, {"format": "png"}])
def test_truncated_jpeg_fails_instead_of_grey(truncated_jpeg: bytes, params: dict) -> None:
    with pytest.raises(UndecodableImage, match=r"^could not decode image$"):
        _render(truncated_jpeg, "image/jpeg", **params)


def test_truncated_jpeg_from_a_path(truncated_jpeg: bytes, tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(truncated_jpeg)
    with pytest.raises(UndecodableImage):
        _render(path, "image/jpeg", max_width=100)


@pytest.mark.parametrize("suffix,mime", [(".png", "image/png"), (".webp", "image/webp")])
def test_truncated_other_formats(images: type[Images], suffix: str, mime: str) -> None:
    whole = images.encode(images.noise(300, 200), suffix)
    with pytest.raises(UndecodableImage):
        _render(whole[: len(whole) * 2 // 3], mime)


@pytest.mark.parametrize(
    "junk",
    [
        os.urandom(4096),
        b"",
        b"\xff\xd8\xff" + os.urandom(4096),  # JPEG magic, then noise
        b"\x89PNG\r\n\x1a\n" + os.urandom(64),
    ],
)
def test_random_junk(junk: bytes) -> None:
    with pytest.raises(UndecodableImage, match=r"^could not decode image$"):
        _render(junk, "image/jpeg")


def test_bytes_must_be_what_the_mime_type_says(images: type[Images]) -> None:
    png = images.encode(images.solid(20, 20), ".png")
    _render(png, "image/png")
    with pytest.raises(UndecodableImage):
        _render(png, "image/jpeg")


def test_video_is_not_rendered() -> None:
    with pytest.raises(BadRequest, match="video/mp4"):
        _render(b"\0\0\0\x18ftypmp42", "video/mp4")


# --- loader allowlist -------------------------------------------------------------------


def test_every_allowlisted_loader_exists_in_this_libvips() -> None:
    import pyvips

    restrict_loaders()
    for name in ALLOWED_LOADERS:
        assert pyvips.type_from_name(name) != 0, name


@pytest.fixture(scope="module")
def foreign_files(images: type[Images], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Files libvips would load if its loaders were not restricted (checked below)."""
    folder = tmp_path_factory.mktemp("foreign")
    grey = images.solid(8, 6, (7,))
    grey.write_to_file(str(folder / "native.v"))
    grey.write_to_file(str(folder / "matrix.mat"))
    grey.write_to_file(str(folder / "table.csv"))
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="6">'
        b'<rect width="8" height="6"/></svg>'
    )
    (folder / "drawing.svg").write_bytes(svg)
    return {path.suffix: path for path in folder.iterdir()}


def test_unrestricted_libvips_would_load_them(foreign_files: dict) -> None:
    # A fresh interpreter, without restrict_loaders(): proves the refusals below are the
    # allowlist's doing and not broken test files.
    script = (
        "import sys, pyvips\n"
        "for p in sys.argv[1:]:\n"
        "    im = pyvips.Image.new_from_file(p)\n"
        "    print(p, im.width, im.height, im.avg())\n"
    )
    paths = [str(p) for p in foreign_files.values()]
    done = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True, check=True
    )
    sizes = [tuple(line.split()[1:3]) for line in done.stdout.splitlines()]
    assert sizes == [("8", "6")] * len(paths)


@pytest.mark.parametrize("suffix", [".v", ".mat", ".csv", ".svg"])
@pytest.mark.parametrize("mime", ["image/png", "image/tiff"])
def test_blocked_loaders_refuse(foreign_files: dict, suffix: str, mime: str) -> None:
    path = foreign_files[suffix]
    with pytest.raises(UndecodableImage):
        _render(path, mime)
    with pytest.raises(UndecodableImage):
        _render(path.read_bytes(), mime)
    with pytest.raises(UndecodableImage):
        image_dimensions(path)


def test_avif_loads_but_heic_does_not(images: type[Images]) -> None:
    import pyvips

    avif = images.encode(images.solid(64, 48), ".avif")
    _render(avif, "image/avif")
    heic = images.heic_container(64, 48)
    header = pyvips.Image.new_from_buffer(heic, "")
    # libheif parses the container; only the codec is missing.
    assert (header.get("heif-compression"), header.width) == ("hevc", 64)
    with pytest.raises(UndecodableImage):
        _render(heic, "image/avif")
    with pytest.raises(pyvips.Error, match="HEVC"):
        header.avg()
