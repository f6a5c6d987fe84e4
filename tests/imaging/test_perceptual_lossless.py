"""The lossless fallback of the perceptual search, below HTTP (AVIF reaches the HTTP test's
targets lossy, so a target above what lossy AVIF can do forces the fallback here)."""

from __future__ import annotations

import numpy as np
import pyvips

from pixelwand.imaging import perceptual


def _noise(width: int = 192, height: int = 160) -> pyvips.Image:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")


def test_avif_falls_back_to_lossless_when_lossy_misses():
    image = _noise()
    searcher = perceptual._Searcher(image, 99.9)
    result = searcher.finish("AVIF", searcher.search("AVIF"))
    assert result.quality == 100 and result.score == 100.0
    decoded = pyvips.Image.new_from_buffer(result.rendered.data, "")
    assert decoded.get("vips-loader").startswith("heif")
    assert (decoded.width, decoded.height) == (image.width, image.height)


def test_a_reachable_target_stays_lossy():
    smooth = _noise(48, 40).resize(4, kernel="cubic")
    searcher = perceptual._Searcher(smooth, 50.0)
    result = searcher.finish("WEBP", searcher.search("WEBP"))
    assert result.quality < 100 and result.rendered.data[12:16] == b"VP8 "
