"""The whole-image stage of the perceptual search, below HTTP: when the scored region is
pessimistic (its detail is all in one corner, the rest is smooth), the whole image scores well
above the target at the region's choice and the search steps down to a lower quality that
still meets it."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from pixelwand.imaging import perceptual


def _detail_in_a_corner(width: int = 640, height: int = 480) -> pyvips.Image:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [x * 200 / width + 20, y * 180 / height + 30, (x + y) * 100 / (width + height) + 60],
        axis=2,
    )
    noise = rng.normal(0, 30, (height // 4, width // 4, 3)).repeat(4, 0).repeat(4, 1)
    corner = ((x < width // 3) & (y < height // 3))[..., None]
    pixels = np.clip(base + noise * corner, 0, 255).astype(np.uint8)
    return pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")


def test_a_pessimistic_region_steps_down_and_still_meets_the_target():
    searcher = perceptual._Searcher(_detail_in_a_corner(), 80.0)
    region_quality, _ = searcher.search("AVIF")
    result = searcher.finish("AVIF", searcher.search("AVIF"))
    assert result.quality < region_quality
    assert result.score is not None and result.score >= 80.0 - perceptual.VERIFY_SLACK
    # The reported score is the served bytes' whole-image score.
    decoded = pyvips.Image.new_from_buffer(result.rendered.data, "")
    reference = perceptual.Reference(perceptual.to_array(searcher.image))
    assert reference.score(perceptual.to_array(decoded)) == pytest.approx(result.score, abs=0.01)


def test_the_perceptual_avif_setting_is_not_the_fixed_quality_one():
    """Fixed-quality exports keep the pipeline's encoder (old clients' bytes do not change);
    only the search encodes AVIF with AVIF_SEARCH_OPTIONS."""
    image = _detail_in_a_corner(160, 120)
    assert "subsample_mode" not in perceptual.pipeline.AVIF_OPTIONS  # libvips' auto: 4:2:0
    fixed = perceptual.pipeline._encode(image, "AVIF", 60)
    assert perceptual._encode(image, "AVIF", 60) != fixed
    assert perceptual._encode(image, "AVIF", 60, chroma444=False) == fixed
