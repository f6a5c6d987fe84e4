"""SSIMULACRA2, vectorised: the perceptual score the quality search aims at.

The metric of Jon Sneyers (libjxl `tools/ssimulacra2.cc`), written as whole-array numpy
operations in float32:

1. sRGB (8-bit) → linear RGB (a 256-entry table) → XYB (the opsin absorbance matrix, cube
   root, bias), made positive as ssimulacra2 does (`X*14+0.42`, `Y+0.01`, `B-Y+0.55`).
2. Six scales: each next scale is the previous linear RGB averaged 2x2 (edge blocks average
   the pixels they have), converted to XYB again; a scale under 8 pixels on a side stops it.
3. At each scale, a Gaussian blur (sigma  1.5, 11 taps: zero outside the image horizontally,
   mirrored vertically — the blur of the reference Python package `ssimulacra2`, which the
   tests and the benchmark compare against) gives μ and sigma² of both images and their
   covariance; the SSIM error map `1 - (1-(μ1-μ2)²)·(2(s12-μ1μ2)+C2)/(s1²-μ1²+s2²-μ2²+C2)`
   (clipped at 0) and the edge-difference map `(1+|d-μd|)/(1+|r-μr|) - 1`, split into
   artifacts (>0) and lost detail (<0), each reduced by its 1-norm and 4-norm per channel.
4. The 108 published weights, then `100 - 10·x^0.6276` of the published cubic.

`Reference` precomputes everything that depends only on the original (its pyramid, μ1,
s1²), so the search's 4-6 scores of one original cost about half of a full comparison.
Images with alpha are scored on a dark (0.1) and a light (0.9) background, the lower score
counting, as the ssimulacra2 tool does.
"""

from __future__ import annotations

import numpy as np
import pyvips

__all__ = ["Reference", "score", "to_array"]

_C2 = 0.0009
_SCALES = 6
_BIAS = 0.0037930732552754493
_CBRT_BIAS = float(np.cbrt(_BIAS))
_OPSIN = np.array(
    [
        [0.30, 1.0 - 0.078 - 0.30, 0.078],
        [0.23, 1.0 - 0.078 - 0.23, 0.078],
        [0.24342268924547819, 0.20476744424496821, 1.0 - 0.24342268924547819 - 0.20476744424496821],
    ],
    dtype=np.float32,
)
_WEIGHTS = np.array(
    [
        0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0,
        0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
        0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0, 1.8422455520539298,
        11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
        1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072,
        0.9677937080626833, 0.0, 0.00014003424285435884, 0.9981766977854967,
        0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398,
        0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
        0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296,
        1.027889937768264, 225.20515300849274, 0.0, 0.0, 19.213238186143016,
        0.0011401524586618361, 0.001237755635509985, 176.39317598450694, 0.0, 0.0,
        24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0, 0.0,
        34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0,
        0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0004179171803251336,
        0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0, 8.826982764996862,
        23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682, 0.9834382792465353,
        0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0,
        0.0005130064588990679, 0.0, 0.00010854057858411537,
    ],
    dtype=np.float32,
)  # fmt: skip
# scipy's Gaussian kernel for sigma  1.5 truncated at 3.33sigma : radius int(3.33·1.5 + 0.5) = 5.
_TAPS = np.exp(-0.5 * (np.arange(-5, 6, dtype=np.float32) / 1.5) ** 2)
_KERNEL = (_TAPS / _TAPS.sum()).astype(np.float32)
_R = 5
# Weights below this are left out with their channel's maps (see _channels).
_NEGLIGIBLE = 0.002


def _srgb_table() -> np.ndarray:
    v = np.arange(256, dtype=np.float32) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LINEAR = _srgb_table()


def to_array(image: pyvips.Image) -> np.ndarray:
    """An 8-bit sRGB (or grey) libvips image as an HxWxbands uint8 array (3 or 4 bands)."""
    if image.format != "uchar":
        image = image.cast("uchar")
    array = np.ndarray(
        buffer=image.write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )
    if image.bands in (1, 2):  # grey (+ alpha): replicate the grey band
        grey = array[:, :, :1]
        parts = [grey, grey, grey] + ([array[:, :, 1:2]] if image.bands == 2 else [])
        array = np.concatenate(parts, axis=2)
    return array


# Rows per strip of the blur on large planes: the horizontal pass and the vertical pass's
# output stay in cache (an 800x533 plane: 3.8 → 2.5 ms a blur, the same numbers).
_STRIP_ROWS = 64
_STRIP_FROM = 1 << 17  # pixels per plane from which the blur goes by strips


def _blur(planes: np.ndarray) -> np.ndarray:
    """The Gaussian of each CxHxW plane: symmetric taps as shifted whole-array adds (faster
    than scipy's correlate1d here: ~3.5 vs ~6 ms a pass on 800x533x3 float32); vertically
    mirrored rows (d c b a | a b c d, as scipy's "reflect"), horizontally zero outside the
    image. Large planes go by strips of `_STRIP_ROWS` rows, each blurred vertically then
    horizontally while it is in cache: the same operations on every value."""
    c, h, w = planes.shape
    k = _KERNEL
    padded = np.empty((c, h + 2 * _R, w), dtype=planes.dtype)
    padded[:, _R : _R + h] = planes
    padded[:, :_R] = planes[:, _R - 1 :: -1] if h >= _R else _mirror_rows(planes, _R)[0]
    padded[:, _R + h :] = planes[:, : -_R - 1 : -1] if h >= _R else _mirror_rows(planes, _R)[1]
    rows = _STRIP_ROWS if h * w >= _STRIP_FROM else h
    result = np.empty((c, h, w), dtype=planes.dtype)
    wide = np.zeros((c, rows, w + 2 * _R), dtype=planes.dtype)  # zero columns either side
    tmp = np.empty((c, rows, w), dtype=planes.dtype)
    for top in range(0, h, rows):
        n = min(rows, h - top)
        vertical, t = wide[:, :n, _R : _R + w], tmp[:, :n]
        np.multiply(padded[:, _R + top : _R + top + n], k[_R], out=vertical)
        for i in range(1, _R + 1):
            up, down = _R + top - i, _R + top + i
            np.add(padded[:, up : up + n], padded[:, down : down + n], out=t)
            t *= k[_R + i]
            vertical += t
        out = result[:, top : top + n]
        np.multiply(vertical, k[_R], out=out)
        for i in range(1, _R + 1):
            np.add(wide[:, :n, _R - i : _R - i + w], wide[:, :n, _R + i : _R + i + w], out=t)
            t *= k[_R + i]
            out += t
    return result


def _mirror_rows(planes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The `n` rows above and below a plane shorter than `n`, as scipy's "reflect" repeats."""
    padded = np.pad(planes, ((0, 0), (n, n), (0, 0)), mode="symmetric")
    return padded[:, :n], padded[:, -n:]


def _xyb(linear: np.ndarray, channels: list[int]) -> np.ndarray:
    """3xHxW linear RGB → the XYB planes `channels` (ascending: 0 X, 1 Y, 2 B), made
    positive. The third opsin mix and its cube root are only computed when B is asked for
    (at full scale only Y counts: a third fewer cube roots there)."""
    r, g, b = linear
    m = _OPSIN
    out = np.empty((len(channels), *linear.shape[1:]), dtype=linear.dtype)
    mixed = [m[i, 0] * r + m[i, 1] * g + m[i, 2] * b + _BIAS for i in range(2 + (2 in channels))]
    for plane in mixed:
        np.maximum(plane, 0.0, out=plane)
        np.cbrt(plane, out=plane)
        plane -= _CBRT_BIAS
    m0, m1 = mixed[0], mixed[1]
    at = {c: i for i, c in enumerate(channels)}
    if 0 in at:
        x = out[at[0]]
        np.subtract(m0, m1, out=x)
        x *= 0.5 * 14.0
        x += 0.42
    y = m0
    y += m1
    y *= 0.5
    if 2 in at:
        np.subtract(mixed[2], y, out=out[at[2]])
        out[at[2]] += 0.55
    if 1 in at:
        np.add(y, 0.01, out=out[at[1]])
    return out


def _downsample(linear: np.ndarray) -> np.ndarray:
    """2x2 averages of a 3xHxW array; blocks past an odd edge average the pixels they have."""
    c, h, w = linear.shape
    eh, ew = h // 2 * 2, w // 2 * 2
    out = np.empty((c, (h + 1) // 2, (w + 1) // 2), dtype=linear.dtype)
    core = out[:, : eh // 2, : ew // 2]
    np.add(linear[:, 0:eh:2, 0:ew:2], linear[:, 1:eh:2, 0:ew:2], out=core)
    core += linear[:, 0:eh:2, 1:ew:2]
    core += linear[:, 1:eh:2, 1:ew:2]
    core *= 0.25
    if w > ew:  # last column: pairs of rows
        out[:, : eh // 2, -1] = (linear[:, 0:eh:2, -1] + linear[:, 1:eh:2, -1]) * 0.5
    if h > eh:  # last row: pairs of columns
        out[:, -1, : ew // 2] = (linear[:, -1, 0:ew:2] + linear[:, -1, 1:ew:2]) * 0.5
    if w > ew and h > eh:
        out[:, -1, -1] = linear[:, -1, -1]
    return out


def _linear_rgb(array: np.ndarray, background: float | None) -> np.ndarray:
    """HxWx(3|4) uint8 → 3xHxW linear RGB, alpha blended onto a grey `background`."""
    if background is not None and array.shape[2] == 4:
        alpha = array[:, :, 3].astype(np.float32) / 255.0
        rest = (background * 255.0) * (1.0 - alpha)
        channels = [
            np.clip(np.rint(array[:, :, i] * alpha + rest), 0, 255).astype(np.uint8)
            for i in range(3)
        ]
        return np.stack([np.take(_LINEAR, ch) for ch in channels])
    # One gather straight into the planar layout (no per-channel copies and stack).
    return np.take(_LINEAR, array[:, :, :3].transpose(2, 0, 1))


class _Pyramid:
    """One original's per-scale μ and 1 + |XYB - μ| of the channels that count there; of those whose
    SSIM map is computed, a shift c (the channel's mean), the shifted XYB and μ, and
    sigma² - μ².

    sigma² - μ² and the covariance are differences of nearly equal numbers next to
    C2 = 0.0009. In float32, computed from the raw XYB (Y ~0.85 on white), their rounding
    noise (~3e-4 of the SSIM error, which is clipped at 0, so the noise adds up) moved scores
    by up to 0.78 against the reference package (float64) on text pages whose white paper a
    JPEG had barely touched. Computed from XYB - c they are the same quantities (exactly, where
    the blur's taps sum to 1; `_shift_fix` restores the terms of the zero-padded columns at
    the left and right edges), with noise shrunk by (|value - c| / value)²; float64 did the
    same for 2x the metric's time."""

    def __init__(self, linear: np.ndarray) -> None:
        self.scales: list[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]] = []
        count = _scale_count(linear.shape[1], linear.shape[2])
        for scale in range(count):
            if scale:
                linear = _downsample(linear)
            active, ssim = _channels(count, scale)
            img = _xyb(linear, active)
            mu = _blur(img)
            shifted: tuple[np.ndarray, ...] = ()
            if ssim:  # only where the SSIM map is computed (score() reads those channels)
                sel = _index(ssim, active)
                part = img[sel]
                c = part.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)[:, None, None]
                sums = _tap_sums(part.shape[2])
                # blur(a - c) = μ - c·s; its rounding error (~1e-7) is squared against the
                # small |μ - c|, not against μ.
                a, m = part - c, mu[sel] - c * sums
                var = _blur(a * a) - m * m
                _shift_fix(var, c, mu[sel], mu[sel], sums)
                shifted = (c, a, m, var, sums)
            # The edge map's original side, 1 + |img - μ|, is the same for every score.
            self.scales.append((1.0 + np.abs(img - mu), mu, shifted))

    def score(self, linear: np.ndarray) -> float:
        planes: list[tuple[np.ndarray, np.ndarray]] = []
        count = len(self.scales)
        for scale, (edge1, mu1, shifted) in enumerate(self.scales):
            if scale:
                linear = _downsample(linear)
            active, ssim_at = _channels(count, scale)
            img2 = _xyb(linear, active)
            mu2 = _blur(img2)
            # The SSIM map only of the channels whose SSIM weights at this scale count (at
            # full scale, Y alone); the edge maps only of the active channels.
            ssim = np.zeros((2, 3))
            if ssim_at:
                c, a, m1, var1, sums = shifted
                sel = _index(ssim_at, active)  # a slice where possible: no copies
                b, m2 = img2[sel] - c, mu2[sel] - c * sums
                var2 = _blur(b * b) - m2 * m2
                cov = _blur(a * b) - m1 * m2
                _shift_fix(var2, c, mu2[sel], mu2[sel], sums)
                _shift_fix(cov, c, mu1[sel], mu2[sel], sums)
                diff = m1 - m2
                num = (1.0 - diff * diff) * (2.0 * cov + _C2)
                d = 1.0 - num / (var1 + var2 + _C2)
                np.maximum(d, 0.0, out=d)
                ssim[:, ssim_at] = _norms(d)
            edge = np.zeros((2, 2, 3))
            if active:
                ratio = img2 - mu2  # (1 + |img2 - μ2|) / (1 + |img1 - μ1|) - 1, in place
                np.abs(ratio, out=ratio)
                ratio += 1.0
                ratio /= edge1
                ratio -= 1.0
                edge[0][:, active] = _norms(np.maximum(ratio, 0.0))
                edge[1][:, active] = _norms(np.maximum(-ratio, 0.0))
            planes.append((ssim, edge))
        return _final(planes)


def _tap_sums(width: int) -> np.ndarray:
    """Per column, the sum of the horizontal blur's taps that fall inside the image (1 but
    within `_R` columns of an edge, where the blur pads with zeros)."""
    inside = np.zeros(width + 2 * _R, dtype=np.float64)
    inside[_R : _R + width] = 1.0
    sums = np.convolve(inside, _TAPS.astype(np.float64) / _TAPS.sum(), mode="valid")
    return sums.astype(np.float32)


def _shift_fix(
    term: np.ndarray, c: np.ndarray, mu_a: np.ndarray, mu_b: np.ndarray, sums: np.ndarray
) -> None:
    """Turn blur(a'b') - blur(a')blur(b'), a' = a - c and b' = b - c, into blur(ab) -
    blur(a)blur(b) in place: they differ by c·(μa + μb)·(1 - s) - c²·s·(1 - s) where the
    taps' sum s is under 1 (the `_R` columns at each side)."""
    w = term.shape[2]
    for cols in (slice(0, min(_R, w)), slice(max(w - _R, 0), w)):
        s = sums[cols]
        term[:, :, cols] += c * (mu_a[:, :, cols] + mu_b[:, :, cols]) * (1 - s) - c * c * s * (
            1 - s
        )


def _index(channels: list[int], active: list[int]) -> slice | list[int]:
    """Positions, among the `active` selected channels, of `channels` (a subset of them)."""
    return slice(None) if channels == active else [active.index(c) for c in channels]


def _scale_count(height: int, width: int) -> int:
    """How many scales a pyramid has: halving (rounding up) until a side is under 8."""
    count = 0
    while count < _SCALES and height >= 8 and width >= 8:
        count += 1
        height, width = (height + 1) // 2, (width + 1) // 2
    return count


def _channels(scales: int, scale: int) -> tuple[list[int], list[int]]:
    """(channels computed at `scale` of a `scales`-scale pyramid, those of them whose SSIM map
    is computed). A channel whose six weights there are all under `_NEGLIGIBLE` is skipped:
    at full scale X and B carry only edge weights of 0.0007-0.0009 (vs 7-17 for Y), and B's
    terms at scales 1-2 are ≤ 0.0017; leaving them out moved scores by at most 0.0012 (60
    pairs: 12 bench images x JPEG/WEBP/AVIF at several qualities), for 40% fewer
    full-scale blurs (an 800x533 score: ~58 → ~31 ms, its Reference ~42 → ~24 ms). (The weights
    are indexed by the scales actually computed, as in libjxl.)"""
    active, ssim = [], []
    for c in range(3):
        base = (c * scales + scale) * 6
        if _WEIGHTS[base : base + 6].max() >= _NEGLIGIBLE:
            active.append(c)
            if max(_WEIGHTS[base], _WEIGHTS[base + 3]) >= _NEGLIGIBLE:
                ssim.append(c)
    return active, ssim


def _norms(d: np.ndarray) -> np.ndarray:
    """[[mean per channel], [4-norm per channel]] of a CxHxW error map, in float64."""
    n = d.shape[1] * d.shape[2]
    mean = d.sum(axis=(1, 2), dtype=np.float64) / n
    sq = d * d
    sq *= sq
    return np.stack([mean, (sq.sum(axis=(1, 2), dtype=np.float64) / n) ** 0.25])


def _final(planes: list[tuple[np.ndarray, np.ndarray]]) -> float:
    total = 0.0
    i = 0
    for c in range(3):
        for ssim, edge in planes:
            for n in range(2):
                total += _WEIGHTS[i] * abs(ssim[n, c])
                total += _WEIGHTS[i + 1] * abs(edge[0, n, c])
                total += _WEIGHTS[i + 2] * abs(edge[1, n, c])
                i += 3
    x = total * 0.9562382616834844
    x = 2.326765642916932 * x - 0.020884521182843837 * x * x + 6.248496625763138e-05 * x**3
    return 100.0 - 10.0 * x**0.6276336467831387 if x > 0 else 100.0


class Reference:
    """An original, prepared once, scored against any number of distorted versions of it.

    `original` is an HxWx3 (RGB) or HxWx4 (RGBA) uint8 array (`to_array`); a distorted
    image must have the same height and width (its alpha, if any, is used likewise).
    """

    def __init__(self, original: np.ndarray) -> None:
        self.shape = original.shape[:2]
        self.alpha = original.shape[2] == 4 and bool((original[:, :, 3] < 255).any())
        backgrounds = (0.1, 0.9) if self.alpha else (None,)
        self._pyramids = [(bg, _Pyramid(_linear_rgb(original, bg))) for bg in backgrounds]

    def score(self, distorted: np.ndarray) -> float:
        if distorted.shape[:2] != self.shape:
            raise ValueError(f"size {distorted.shape[:2]} differs from the original's {self.shape}")
        if self.alpha and distorted.shape[2] < 4:
            # The distorted copy lost its alpha: compare it as an opaque image.
            distorted = np.concatenate(
                [distorted[:, :, :3], np.full((*self.shape, 1), 255, np.uint8)], axis=2
            )
        return min(p.score(_linear_rgb(distorted, bg)) for bg, p in self._pyramids)


def score(original: np.ndarray, distorted: np.ndarray) -> float:
    """SSIMULACRA2 of `distorted` against `original` (uint8 arrays of the same size)."""
    return Reference(original).score(distorted)
