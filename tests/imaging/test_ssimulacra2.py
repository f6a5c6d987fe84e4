"""The product's SSIMULACRA2 against the reference Python package (`ssimulacra2`, dev only)."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips
from ssimulacra2 import compute_ssimulacra2

from pixelwand.imaging import ssimulacra2 as s2
from pixelwand.imaging.perceptual import interpolation_search


def _photo(width: int, height: int, seed: int) -> pyvips.Image:
    rng = np.random.default_rng(seed)
    noise = rng.normal(128, 40, (height, width, 3)).clip(0, 255).astype(np.uint8)
    image = pyvips.Image.new_from_array(noise).copy(interpretation="srgb").gaussblur(1.3)
    ramp = pyvips.Image.xyz(width, height)[0] * (255 / width)
    return (image * 0.6 + ramp * 0.4).cast("uchar").copy(interpretation="srgb")


def _array(image: pyvips.Image) -> np.ndarray:
    return s2.to_array(image)


@pytest.mark.parametrize(
    ("size", "fmt", "quality"),
    [
        ((96, 64), ".jpg", 20),
        ((96, 64), ".jpg", 60),
        ((101, 77), ".jpg", 90),  # odd sizes: edge blocks of the 2x2 pyramid
        ((80, 80), ".webp", 40),
        ((64, 120), ".avif", 50),
        ((40, 30), ".jpg", 50),  # too small for all six scales
    ],
)
def test_agrees_with_the_reference_package(tmp_path, size, fmt, quality):
    original = _photo(*size, seed=size[0] + quality)
    distorted = pyvips.Image.new_from_buffer(original.write_to_buffer(fmt, Q=quality), "")
    distorted = distorted.colourspace("srgb").cast("uchar")
    original.pngsave(str(tmp_path / "a.png"))
    distorted.pngsave(str(tmp_path / "b.png"))
    expected = compute_ssimulacra2(str(tmp_path / "a.png"), str(tmp_path / "b.png"))
    ours = s2.score(_array(original), _array(distorted))
    assert ours == pytest.approx(expected, abs=0.05), (ours, expected)
    assert ours < 100


def test_identical_images_score_100():
    image = _array(_photo(90, 70, seed=1))
    assert s2.score(image, image) == 100.0
    reference = s2.Reference(image)
    assert reference.score(image.copy()) == 100.0


def test_more_distortion_scores_lower():
    original = _photo(128, 96, seed=5)
    reference = s2.Reference(_array(original))
    scores = []
    for q in (10, 40, 70, 95):
        decoded = pyvips.Image.new_from_buffer(original.jpegsave_buffer(Q=q), "")
        scores.append(reference.score(_array(decoded)))
    assert scores == sorted(scores), scores


def test_alpha_is_scored_on_dark_and_light_backgrounds():
    rgb = _array(_photo(64, 64, seed=2))
    alpha = np.full((64, 64, 1), 255, np.uint8)
    alpha[:, :32] = 0
    original = np.concatenate([rgb, alpha], axis=2)
    hidden = original.copy()
    hidden[:, :32, :3] = 0  # only fully transparent pixels change: invisible
    assert s2.score(original, hidden) == 100.0
    visible = original.copy()
    visible[:, 40:, :3] //= 2
    assert s2.score(original, visible) < 90


def test_size_mismatch_is_refused():
    with pytest.raises(ValueError):
        s2.Reference(np.zeros((16, 16, 3), np.uint8)).score(np.zeros((16, 17, 3), np.uint8))


def test_interpolation_search_finds_the_lowest_passing_quality():
    calls = []

    def evaluate(q: int) -> float:
        calls.append(q)
        return 20 + 0.7 * q  # reaches 80 at q ≈ 85.7

    assert interpolation_search(evaluate, 80, 60)[0] == 86
    assert len(calls) <= 6
    # Out of reach: the top quality and its real score.
    q, score = interpolation_search(lambda q: q * 0.5, 80, 70)
    assert q == 100 and score == 50


def test_interpolation_search_tries_both_sides_of_a_cliff():
    calls = []

    def evaluate(q: int) -> float:  # JPEG-like: chroma subsampling stops at 90
        calls.append(q)
        return 60 + 0.2 * q if q < 90 else 88 + 0.1 * (q - 90)

    assert interpolation_search(evaluate, 80, 86, cliff=90)[0] == 90
    assert calls == [86, 90, 89]  # not 87 and 88: interpolating across the jump


def test_a_step_up_over_the_cliff_tries_the_cliff_first():
    """A region far under the target below JPEG's Q 90 jump (fine colour detail in 4:2:0):
    the step up lands on the jump, not on the top quality it would have overshot to."""
    calls = []

    def evaluate(q: int) -> float:
        calls.append(q)
        return 50 + 0.2 * q if q < 90 else 88 + 0.1 * (q - 90)

    assert interpolation_search(evaluate, 80, 86, cliff=90) == (90, 88.0)
    assert calls == [86, 90, 89]  # not 100 first


@pytest.mark.parametrize("shape", [(1, 300, 520), (2, 37, 29), (3, 4, 9)])
def test_the_blur_is_scipys_gaussian(shape):
    """The blur, by row strips on planes as large as a full-scale 800 px rendition's and whole
    on small ones (and on planes shorter than its radius): scipy's correlate1d with the
    reference package's edges (mirrored rows, zero columns)."""
    from scipy.ndimage import correlate1d

    planes = np.random.default_rng(sum(shape)).random(shape).astype(np.float32)
    assert shape[1] * shape[2] < s2._STRIP_FROM or shape[1] % s2._STRIP_ROWS  # a partial strip
    vertical = correlate1d(planes.astype(np.float64), s2._KERNEL, axis=1, mode="reflect")
    expected = correlate1d(vertical, s2._KERNEL, axis=2, mode="constant")
    assert np.abs(s2._blur(planes) - expected).max() < 1e-5
