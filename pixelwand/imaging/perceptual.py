"""Perceptual targets: the `perceptual` syntax, and the per-image quality/format search.

Syntax (DESIGN.md "Perceptual quality"): `auto` (= `auto:high`), `auto:low|medium|high|best`
(SSIMULACRA2 50/70/80/90) or `auto:NN` (30-95), any case, answered normalised.

The search (`render_perceptual`), once per rendition:

1. The source is shrunk exactly as a fixed-quality export is (pipeline steps), then held in
   memory: the resized output is the reference, never the source and never a smaller copy.
2. The most detailed `SCORE_CROP`² region of it (block gradients, `_detailed_region`), aligned to
   16 px so the encoders' block grid matches the full image's, is what each step encodes,
   decodes and scores (SSIMULACRA2, `ssimulacra2.Reference` prepared once).
3. Per format, an interpolation search from a prior (a quality known to land near each
   target, per format) brackets the lowest quality whose crop scores ≥ target; it stops when
   the bracket is one step wide or after `MAX_STEPS` encodes. No quality reaching the target
   → the top quality (the best the format does).
4. The chosen quality encodes the whole image once and the whole of it is scored (what a
   rendition reports as `score`); if the region was optimistic (whole < target - 0.5), the
   quality steps up, at most `VERIFY_STEPS` more encodes; if it was pessimistic (whole ≥
   target + `STEP_DOWN_ABOVE`), one step down (and for AVIF 4:2:0 at the same quality) is
   tried, kept if it still meets target - 0.5. Both directions guess from the region's
   scores shifted by the measured whole-minus-region offset (`_retarget`). WEBP/AVIF still
   missing the target at the end: quality 100, then lossless (`LOSSLESS_FALLBACK`),
   reported as quality 100 with the real score. AVIF is encoded with `AVIF_SEARCH_OPTIONS`
   (4:4:4), a setting of this path only.
5. `format=AUTO`: every allowed format is searched on the crop; the full image is encoded
   in the format whose crop was smallest (and any within `AUTO_MARGIN` of it); lossless PNG /
   WEBP compete when the image has at most `FEW_COLOURS` colours (graphics); the smallest
   full output wins. Sources with alpha only get formats that keep it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pyvips

from pixelwand.errors import BadRequest
from pixelwand.imaging import pipeline
from pixelwand.imaging.params import TransformParams, mime_for, resolve_format
from pixelwand.imaging.ssimulacra2 import Reference, to_array

LEVELS = {"low": 50, "medium": 70, "high": 80, "best": 90}
MIN_TARGET, MAX_TARGET = 30, 95
DEFAULT_PERCEPTUAL = "auto:high"
DEFAULT_FORMATS = ("AVIF", "WEBP", "JPEG")
ALPHA_FORMATS = frozenset({"PNG", "WEBP", "AVIF"})
LOSSY = ("JPEG", "WEBP", "AVIF")

SCORE_CROP = 256
MAX_STEPS = 6
# A passing score this close above the target ends the search (saves 1-2 encodes a search).
CLOSE_ENOUGH = 0.4
QUALITY_RANGE = (10, 100)
AUTO_MARGIN = 1.15
VERIFY_SLACK = 0.5
VERIFY_STEPS = 4
FEW_COLOURS = 256
# Formats with a lossless mode tried when lossy at the top quality misses the target.
LOSSLESS_FALLBACK = frozenset({"WEBP", "AVIF"})
# Prior: (target, quality) points per format, measured on photo-like images; the search starts
# at the interpolated quality and moves with the slope between points.
# Qualities where a format's score jumps: libvips' jpegsave keeps chroma at full resolution
# from Q 90 (subsample_mode auto), so 89 → 90 can gain 20 points on colourful detail.
_CLIFF = {"JPEG": 90}
# (AVIF's region used to aim 0.5 above the target so that the first whole-image check passed
# more often; with the whole-image stage correcting both ways it only cost bytes: removed.)
_PRIOR = {
    "JPEG": ((30, 18), (50, 38), (70, 72), (80, 86), (90, 95), (95, 98)),
    "WEBP": ((30, 15), (50, 42), (70, 76), (80, 87), (90, 95), (95, 99)),
    "AVIF": ((30, 20), (50, 40), (70, 58), (80, 68), (90, 84), (95, 93)),
}
# Encoder settings of the perceptual path only (fixed-quality exports keep the pipeline's, so
# old clients' bytes do not change). AVIF with full-resolution chroma (4:4:4) at every
# quality: at an equal SSIMULACRA2 of 80 it took 6% fewer bytes over the bench corpus (up to
# 16% on fine colour detail, where 4:2:0 needs Q 86+ and libvips only switches chroma
# subsampling off from Q 90), for ~13% more encode time; smooth gradients took ~250 bytes
# more. 10-bit AVIF saved a further ~1% for ~40% more time; libaom's tune=ssim made photos
# 1-8% larger than its default (tune=iq in this libheif/libaom): neither adopted.
AVIF_SEARCH_OPTIONS = {**pipeline.AVIF_OPTIONS, "subsample_mode": "off"}
# When the whole image scores this far above the target after the region's choice (its
# region was pessimistic: images whose detail is in one place, alpha with a transparent
# surround, text pages with margins), one lower quality, found on the region with the
# measured whole-minus-region offset (`_retarget`), is encoded whole and kept if it still
# meets the target. Steps up (whole under target - VERIFY_SLACK) are found the same way.
STEP_DOWN_ABOVE = 1.0
# Where a whole-image step aims: up-steps a little above the target (another miss costs a
# whole encode), the step down at the target itself (a miss costs the same encode, and the
# step is taken only if the whole still scores ≥ target - VERIFY_SLACK).
UP_AIM, DOWN_AIM = 0.3, -0.3


# --- syntax -------------------------------------------------------------------------------


def parse_perceptual(value: object, field: str = "perceptual") -> str | None:
    """Normalise a target (`auto`, `auto:high`, `AUTO:85`…) or raise BadRequest naming `field`."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return DEFAULT_PERCEPTUAL
        head, sep, level = text.partition(":")
        if head == "auto" and sep:
            level = level.strip()
            if level in LEVELS:
                return f"auto:{level}"
            if level.isascii() and level.isdigit() and MIN_TARGET <= int(level) <= MAX_TARGET:
                return f"auto:{int(level)}"
    raise BadRequest(
        f"{field} must be auto, auto:low, auto:medium, auto:high, auto:best "
        f"or auto:NN with NN between {MIN_TARGET} and {MAX_TARGET}"
    )


def is_perceptual_text(value: object) -> bool:
    """Whether a REST `quality` value is the `auto…` shorthand rather than a number."""
    return isinstance(value, str) and value.strip().lower().startswith("auto")


def target_score(perceptual: str) -> int:
    level = perceptual.split(":", 1)[1]
    return LEVELS[level] if level in LEVELS else int(level)


def parse_formats(value: object, field: str = "formats") -> tuple[str, ...] | None:
    """`avif,webp,jpeg` (a string) or a list of names → ordered distinct formats."""
    if value is None:
        return None
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, list | tuple):
        items = [p for v in value for p in (v.split(",") if isinstance(v, str) else [v])]
    else:
        raise BadRequest(f"{field} must be a comma-separated list of JPEG, PNG, WEBP, AVIF")
    out: list[str] = []
    for item in items:
        name = item.strip().upper() if isinstance(item, str) else None
        name = "JPEG" if name == "JPG" else name
        if name not in ("JPEG", "PNG", "WEBP", "AVIF"):
            raise BadRequest(f"{field} must list only JPEG, PNG, WEBP or AVIF (got {item!r})")
        if name not in out:
            out.append(name)
    if not out:
        raise BadRequest(f"{field} must name at least one format")
    return tuple(out)


# --- the search ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Optimised:
    rendered: pipeline.Rendered
    quality: int  # encoder setting used; 100 for lossless outputs
    score: float | None  # SSIMULACRA2 achieved on the scored region; None without a target
    encodes: int = 0  # how many encodes the search took (benchmark figure)


def render_perceptual(
    source,
    params: TransformParams,
    *,
    source_mime: str,
    max_pixels: int,
    focal: tuple[float, float] | None = None,
) -> Optimised:
    """Render `params` (with `params.perceptual` set) at the quality its target needs."""
    assert params.perceptual is not None
    target = float(target_score(params.perceptual))
    with pipeline._decode_errors():
        header = pipeline._load(source, source_mime, max_pixels)
        has_alpha = pipeline._has_alpha(header, source_mime)
        if params.format == "AUTO":
            shrink_as = "PNG" if has_alpha else "JPEG"
        else:
            shrink_as = params.format or resolve_format(params, source_mime, has_alpha)
        shrunk = pipeline._shrink(
            pipeline._thumbnailer(source),
            params,
            shrink_as,
            pipeline._is_colour_managed(header),
            pipeline.upright_size(header),
            focal,
        )
        base = pipeline._colour(shrunk, "PNG").copy_memory()
        if params.format == "AUTO":
            allowed = params.formats or DEFAULT_FORMATS
            if base.hasalpha() and base[base.bands - 1].min() >= 255:
                base = base.extract_band(0, n=base.bands - 1).copy_memory()
            if base.hasalpha():
                allowed = tuple(f for f in allowed if f in ALPHA_FORMATS)
                if not allowed:
                    raise BadRequest("formats: this image has alpha; list PNG, WEBP or AVIF")
            return _auto(base, allowed, target)
        output_format = shrink_as
        image = pipeline._colour(base, output_format).copy_memory()
        if output_format == "PNG":
            return _lossless(image, "PNG")
        searcher = _Searcher(image, target)
        return searcher.finish(output_format, searcher.search(output_format))


class _Searcher:
    def __init__(self, image: pyvips.Image, target: float) -> None:
        self.image = image
        self.target = target
        self.encodes = 0
        w, h = image.width, image.height
        cw, ch = min(SCORE_CROP, w), min(SCORE_CROP, h)
        if (cw, ch) == (w, h):
            left = top = 0
        else:
            left, top = _detailed_region(to_array(image), cw, ch)
        self.box = (left, top, cw, ch)
        self.whole = (cw, ch) == (w, h)
        self.crop = image.extract_area(left, top, cw, ch).copy_memory()
        self.reference = Reference(to_array(self.crop))
        self.crop_bytes: dict[tuple[str, int], int] = {}
        self.crop_scores: dict[tuple[str, int], float] = {}
        self.full_reference: Reference | None = None

    def _score_crop(self, fmt: str, quality: int) -> float:
        known = self.crop_scores.get((fmt, quality))
        if known is not None:
            return known
        data = _encode(self.crop, fmt, quality)
        self.encodes += 1
        self.crop_bytes[(fmt, quality)] = len(data)
        score = self.crop_scores[(fmt, quality)] = self._score(data, crop=False)
        return score

    def _score(self, data: bytes, *, crop: bool, full: bool = False) -> float:
        if full:
            if self.whole:
                return self._score(data, crop=False)
            if self.full_reference is None:
                self.full_reference = Reference(to_array(self.image))
            return self._score_full(data)
        decoded = pyvips.Image.new_from_buffer(data, "")
        if crop:
            decoded = decoded.extract_area(*self.box)
        return self.reference.score(to_array(_as_srgb(decoded, self.crop)))

    def search(self, fmt: str) -> tuple[int, float]:
        """(quality, crop score): the lowest quality found whose crop meets the target."""
        return interpolation_search(
            lambda q: self._score_crop(fmt, q),
            self.target,
            _prior(fmt, self.target),
            cliff=_CLIFF.get(fmt),
        )

    def finish(self, fmt: str, choice: tuple[int, float]) -> Optimised:
        """Encode the whole image at the chosen quality and score the whole of it. When the
        region was optimistic (the whole scores under target - VERIFY_SLACK), step the
        quality up, at most VERIFY_STEPS more whole encodes; when it was pessimistic (the
        whole scores ≥ target + STEP_DOWN_ABOVE), one step down (`_retarget`) and, for AVIF,
        4:2:0 at the same quality (`_subsampled`), each kept only if the whole still scores
        ≥ target - VERIFY_SLACK."""
        quality, score = choice
        if fmt in LOSSLESS_FALLBACK and quality >= QUALITY_RANGE[1] and score < self.target - 3:
            # The region misses the target by far even at the top quality: the whole image
            # will too, so its lossy encode is skipped for the lossless one.
            data = _encode_lossless(self.image, fmt, fast=True)
            self.encodes += 1
            # Lossless WEBP decodes to the very pixels (libwebp alters RGB only where alpha
            # is 0, which the alpha-blended score does not see): 100 without scoring.
            score = 100.0 if fmt == "WEBP" else self._score(data, crop=False, full=True)
            return Optimised(
                _rendered(data, fmt, self.image), quality, round(score, 2), self.encodes
            )
        data = _encode(self.image, fmt, quality)
        self.encodes += 1
        if not self.whole:
            if self.full_reference is None:
                self.full_reference = Reference(to_array(self.image))
            quality, data, score, stepped_up = self._steps_up(fmt, quality, data)
            if score >= self.target + STEP_DOWN_ABOVE:
                quality, data, score = self._step_down(
                    fmt, quality, data, score, stepped_up=stepped_up
                )
        if fmt in LOSSLESS_FALLBACK and score < self.target - VERIFY_SLACK:
            # Lossy at its top quality cannot reach the target on this image (WEBP's 4:2:0
            # chroma on fine colour detail): the format's lossless mode, if it does.
            if quality < QUALITY_RANGE[1]:
                quality = QUALITY_RANGE[1]
                data = _encode(self.image, fmt, quality)
                self.encodes += 1
                score = self._score(data, crop=False, full=True)
            if score < self.target - VERIFY_SLACK:
                lossless = _encode_lossless(self.image, fmt, fast=True)
                self.encodes += 1
                lossless_score = self._score(lossless, crop=False, full=True)
                if lossless_score > score:
                    data, score = lossless, lossless_score
        rendered = _rendered(data, fmt, self.image)
        return Optimised(rendered, quality, round(score, 2), self.encodes)

    def _steps_up(self, fmt: str, quality: int, data: bytes) -> tuple[int, bytes, float, bool]:
        """Score the whole image; while it misses target - VERIFY_SLACK, step the quality
        up (at most VERIFY_STEPS whole encodes, then JPEG's cliff itself). Also answers
        whether any step was taken."""
        score = self._score_full(data)
        points = {quality: score}
        cliff = _CLIFF.get(fmt)
        for _ in range(VERIFY_STEPS):
            if score >= self.target - VERIFY_SLACK or quality >= QUALITY_RANGE[1]:
                break
            # The smaller of two guesses: the region's curve with the offset (exact when the
            # offset holds), the whole image's slope (when the region's curve is flat where
            # the whole one is steep: flat graphics).
            higher = quality + _step(points, self.target + UP_AIM - score)
            guess = self._retarget(fmt, quality, score, UP_AIM)
            if guess is not None and guess > quality:
                higher = min(higher, guess)
            if cliff is not None and quality < cliff - 1 and cliff < higher:
                # Not over JPEG's Q 90 jump in one step: flat graphics' whole score barely
                # moves below it and leaps there (Q 85 at 79.6 → Q 91 at 92.6).
                higher = cliff - 1
            quality = min(QUALITY_RANGE[1], higher)
            data = _encode(self.image, fmt, quality)
            self.encodes += 1
            score = points[quality] = self._score_full(data)
        if (
            fmt not in LOSSLESS_FALLBACK
            and score < self.target - VERIFY_SLACK
            and cliff is not None
            and quality < cliff
        ):
            # The steps ran out under the cliff (JPEG on flat graphics): the cliff itself.
            quality = cliff
            data = _encode(self.image, fmt, quality)
            self.encodes += 1
            score = points[quality] = self._score_full(data)
        return quality, data, score, len(points) > 1

    def _step_down(
        self, fmt: str, quality: int, data: bytes, score: float, *, stepped_up: bool
    ) -> tuple[int, bytes, float]:
        """The whole scores ≥ target + STEP_DOWN_ABOVE: one lower quality (unless it was
        just stepped up to), then for AVIF 4:2:0 at the same quality, each kept only if the
        whole still meets target - VERIFY_SLACK."""
        if not stepped_up:
            lower = self._retarget(fmt, quality, score, DOWN_AIM)
            if lower is not None and lower < quality:
                lower_data = _encode(self.image, fmt, lower)
                self.encodes += 1
                lower_score = self._score_full(lower_data)
                if lower_score >= self.target - VERIFY_SLACK:
                    data, quality, score = lower_data, lower, lower_score
        if fmt == "AVIF" and score >= self.target + STEP_DOWN_ABOVE:
            data, score = self._subsampled(quality, data, score)
        return quality, data, score

    def _retarget(self, fmt: str, quality: int, whole: float, aim: float) -> int | None:
        """The quality whose whole image should land at target + `aim`, from the
        region's scores shifted by the whole-minus-region offset measured at `quality` (the
        region can sit well above or below the whole: detail in one place, a transparent
        surround, text margins, flat graphics). Region encodes only; None when the region
        has no score at `quality` (a whole-image step the search never made)."""
        region = self.crop_scores.get((fmt, quality))
        if region is None:
            return None
        goal = self.target + aim - (whole - region)
        known = {q: v for (f, q), v in self.crop_scores.items() if f == fmt}
        gap = self.target + aim - whole
        if gap < 0 and known.get(quality - 1, goal) < goal:
            return None  # the step under it is known to miss (JPEG's Q 90 cliff, mostly)
        start = quality + (1 if gap > 0 else -1) * _step(known, abs(gap))
        start = min(max(start, QUALITY_RANGE[0]), QUALITY_RANGE[1])
        found, _ = interpolation_search(
            lambda q: self._score_crop(fmt, q), goal, start, _CLIFF.get(fmt)
        )
        return found

    def _subsampled(self, quality: int, data: bytes, whole: float) -> tuple[bytes, float]:
        """AVIF still above the target by STEP_DOWN_ABOVE at a quality one quantizer step
        over it (libheif's AVIF qualities move in steps of ~1.3, 2-3 points on photos):
        4:2:0 chroma at the same quality sits between the two steps (1-2.5 points under
        4:4:4, ~5% fewer bytes). Tried whole when the region, shifted by the 4:4:4 offset,
        says it should still meet the target."""
        region = self.crop_scores.get(("AVIF", quality))
        if region is None:
            return data, whole
        crop = _encode(self.crop, "AVIF", quality, chroma444=False)
        self.encodes += 1
        predicted = whole + self._score(crop, crop=False) - region
        if predicted < self.target - VERIFY_SLACK:
            return data, whole
        smaller = _encode(self.image, "AVIF", quality, chroma444=False)
        self.encodes += 1
        score = self._score_full(smaller)
        if score >= self.target - VERIFY_SLACK and len(smaller) < len(data):
            return smaller, score
        return data, whole

    def _score_full(self, data: bytes) -> float:
        assert self.full_reference is not None
        decoded = pyvips.Image.new_from_buffer(data, "")
        return self.full_reference.score(to_array(_as_srgb(decoded, self.image)))


def interpolation_search(
    evaluate: Callable[[int], float], target: float, start: int, cliff: int | None = None
) -> tuple[int, float]:
    """The lowest quality in QUALITY_RANGE whose score ≥ target, found by interpolating
    between measured points; (top quality, its score) when even that misses. `cliff`: a
    quality where the score jumps (libjpeg stops chroma subsampling at 90); a bracket that
    spans it tries the cliff and the step under it instead of interpolating across it."""
    lo_q, hi_q = QUALITY_RANGE
    scores: dict[int, float] = {}
    q = min(max(start, lo_q), hi_q)
    while len(scores) < MAX_STEPS and q not in scores:
        scores[q] = evaluate(q)
        passing = [k for k, v in scores.items() if v >= target]
        failing = [k for k, v in scores.items() if v < target]
        best_pass = min(passing) if passing else None
        worst_fail = max((k for k in failing if best_pass is None or k < best_pass), default=None)
        if best_pass is not None and (best_pass == lo_q or worst_fail == best_pass - 1):
            break
        if best_pass is not None and scores[best_pass] - target <= CLOSE_ENOUGH:
            break  # a lower quality would almost surely miss: not worth its encode
        if best_pass is None and worst_fail == hi_q:
            break
        if (
            cliff is not None
            and best_pass is not None
            and worst_fail is not None
            and worst_fail < cliff <= best_pass
            and (cliff not in scores or cliff - 1 not in scores)
        ):
            q = cliff if cliff not in scores else cliff - 1
        elif best_pass is not None and worst_fail is not None:
            s_lo, s_hi = scores[worst_fail], scores[best_pass]
            frac = (target - s_lo) / (s_hi - s_lo) if s_hi > s_lo else 0.5
            q = worst_fail + math.ceil(frac * (best_pass - worst_fail))
            q = min(max(q, worst_fail + 1), best_pass - 1)
        elif best_pass is None:
            assert worst_fail is not None
            q = worst_fail + _step(scores, target - scores[worst_fail])
            q = min(q, hi_q)
            if cliff is not None and worst_fail < cliff < q:
                # A step up over the jump tries the jump first: where it passes, the quality
                # under it is what decides, and the step's own quality (often the top one)
                # would have been an encode spent above the answer.
                q = cliff
        else:
            q = best_pass - _step(scores, scores[best_pass] - target)
            q = max(q, lo_q)
    passing = [k for k, v in scores.items() if v >= target]
    q = min(passing) if passing else max(scores, key=lambda k: (scores[k], k))
    return q, scores[q]


def _step(scores: dict[int, float], gap: float) -> int:
    """Quality steps expected to move the score by `gap` (slope from the points, else 0.8)."""
    slope = 0.8
    if len(scores) >= 2:
        ks = sorted(scores)
        a, b = ks[-2], ks[-1]
        measured = (scores[b] - scores[a]) / (b - a)
        if measured > 0.05:
            slope = measured
    return max(1, math.ceil(gap / slope + 0.5))


def _prior(fmt: str, target: float) -> int:
    points = _PRIOR[fmt]
    return round(float(np.interp(target, [p[0] for p in points], [p[1] for p in points])))


def _auto(base: pyvips.Image, allowed: tuple[str, ...], target: float) -> Optimised:
    candidates: list[Optimised] = []
    if ("PNG" in allowed or "WEBP" in allowed) and _few_colours(base):
        for fmt in ("PNG", "WEBP"):
            if fmt in allowed:
                candidates.append(_lossless(base, fmt))
    lossy = [f for f in LOSSY if f in allowed]
    searcher = _Searcher(base, target) if lossy else None
    if searcher is not None:
        choices = {fmt: searcher.search(fmt) for fmt in lossy}
        crop_size = {fmt: searcher.crop_bytes[(fmt, choices[fmt][0])] for fmt in lossy}
        # Formats whose crop missed the target by more than the best one are not preferred.
        best_score = max(c[1] for c in choices.values())
        reaching = [f for f in lossy if choices[f][1] >= min(target, best_score)]
        smallest = min(crop_size[f] for f in reaching)
        for fmt in reaching:
            if crop_size[fmt] <= smallest * AUTO_MARGIN:
                candidates.append(searcher.finish(fmt, choices[fmt]))
    if not candidates and "PNG" in allowed:
        candidates.append(_lossless(base, "PNG"))
    best = min(candidates, key=lambda c: len(c.rendered.data))
    total = sum(c.encodes for c in candidates)
    return dataclasses.replace(best, encodes=total)


def _lossless(image: pyvips.Image, fmt: str) -> Optimised:
    data = _encode_lossless(image, fmt)
    return Optimised(_rendered(data, fmt, image), 100, 100.0, 1)


def _encode_lossless(image: pyvips.Image, fmt: str, *, fast: bool = False) -> bytes:
    """`fast`: the fallback for images lossy formats cannot serve (photo-like detail), where
    WEBP effort 1 made the same size as effort 4 in 40% of the time (1.017 MB, 225 vs 553 ms
    at 800x533); graphics (format AUTO's lossless candidates) keep the pipeline's effort."""
    if fmt == "PNG":
        return pipeline._encode(image, "PNG", 100)
    if fmt == "WEBP":
        effort = 1 if fast else pipeline.WEBP_EFFORT
        return image.webpsave_buffer(lossless=True, effort=effort, keep="none")
    assert fmt == "AVIF"
    return image.heifsave_buffer(
        lossless=True, effort=pipeline.AVIF_EFFORT, keep="none", **pipeline.AVIF_OPTIONS
    )


def _few_colours(image: pyvips.Image) -> bool:
    array = to_array(image)
    flat = array.reshape(-1, array.shape[2])
    if flat.shape[1] == 3:
        packed = flat[:, 0].astype(np.uint32) << 16 | flat[:, 1].astype(np.uint32) << 8 | flat[:, 2]
    else:
        packed = (
            flat[:, 0].astype(np.uint32) << 24
            | flat[:, 1].astype(np.uint32) << 16
            | flat[:, 2].astype(np.uint32) << 8
            | flat[:, 3]
        )
    # A sample first: photos fail it at once.
    sample = packed[:: max(1, packed.size // 20_000)]
    if np.unique(sample).size > FEW_COLOURS:
        return False
    return int(np.unique(packed).size) <= FEW_COLOURS


def _encode(image: pyvips.Image, fmt: str, quality: int, *, chroma444: bool = True) -> bytes:
    """A lossy encode of the search: the pipeline's encoders, AVIF with AVIF_SEARCH_OPTIONS
    (`chroma444=False`: 4:2:0, the alternative `_subsampled` tries)."""
    if fmt == "JPEG" and image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if fmt == "AVIF":
        options = (
            AVIF_SEARCH_OPTIONS if chroma444 else {**AVIF_SEARCH_OPTIONS, "subsample_mode": "on"}
        )
        return image.heifsave_buffer(Q=quality, effort=pipeline.AVIF_EFFORT, keep="none", **options)
    return pipeline._encode(image, fmt, quality)


def _as_srgb(decoded: pyvips.Image, like: pyvips.Image) -> pyvips.Image:
    """Decoded pixels in the reference's layout (8-bit, same bands where possible)."""
    if decoded.format != "uchar":
        decoded = decoded.cast("uchar")
    if like.bands >= 3 and decoded.bands < 3:
        grey = decoded.extract_band(0)
        decoded = grey.bandjoin([grey, grey]).copy(interpretation="srgb")
    return decoded


def _rendered(data: bytes, fmt: str, image: pyvips.Image) -> pipeline.Rendered:
    return pipeline.Rendered(
        data=data, format=fmt, width=image.width, height=image.height, mime_type=mime_for(fmt)
    )


def _detailed_region(array: np.ndarray, cw: int, ch: int) -> tuple[int, int]:
    """(left, top) of the `cw`x`ch` window, on the 16 px grid, with the most detail: the
    largest sum of absolute luminance gradients (an integral image over 16 px blocks). A few
    ms on 800x533, where libvips `smartcrop` (entropy) took ~40 ms of many small operations."""
    h, w = array.shape[:2]
    bh, bw = h // 16, w // 16
    grey = array[: bh * 16, : bw * 16, 1].astype(np.int16)  # green: most of luminance
    detail = np.zeros(grey.shape, dtype=np.int16)
    np.abs(np.diff(grey, axis=1), out=detail[:, 1:])
    detail[1:, :] += np.abs(np.diff(grey, axis=0))
    blocks = detail.reshape(bh, 16, bw, 16).sum(axis=(1, 3), dtype=np.int64)
    nh, nw = -(-ch // 16), -(-cw // 16)  # window size in blocks (rounded up)
    if bh < nh or bw < nw:
        return 0, 0
    integral = np.zeros((bh + 1, bw + 1), dtype=np.float64)
    integral[1:, 1:] = blocks.cumsum(axis=0).cumsum(axis=1)
    sums = integral[nh:, nw:] - integral[:-nh, nw:] - integral[nh:, :-nw] + integral[:-nh, :-nw]
    by, bx = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return _align(int(bx) * 16, w - cw), _align(int(by) * 16, h - ch)


def _align(offset: int, limit: int) -> int:
    return max(0, min(offset // 16 * 16, limit))


def parse_perceptual_args(
    format: object, quality: object, perceptual: object, formats: object
) -> tuple[object, object, str | None, tuple[str, ...] | None, bool]:
    """The perceptual part of client input: (format left for the fixed-format parser, None
    for AUTO; numeric quality; normalised target; formats; whether format is AUTO). Raises
    BadRequest naming the field: `quality=auto…` with `perceptual` too, AUTO with a numeric
    quality, `formats` without AUTO, an unknown level or format."""
    target = parse_perceptual(perceptual)
    if is_perceptual_text(quality):
        shorthand = parse_perceptual(quality, "quality")
        if target is not None and target != shorthand:
            raise BadRequest("quality: give quality=auto… or perceptual, not both")
        target, quality = shorthand, None
    auto = isinstance(format, str) and format.strip().upper() == "AUTO"
    candidates = parse_formats(formats)
    if auto:
        if quality is not None:
            raise BadRequest(
                "quality: format AUTO takes no numeric quality (use perceptual, e.g. auto:high)"
            )
        return None, None, target or DEFAULT_PERCEPTUAL, candidates, True
    if candidates is not None:
        raise BadRequest("formats needs format AUTO")
    return format, quality, target, None, False
