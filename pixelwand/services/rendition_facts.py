"""The perceptual side of renditions (docs/perceptual.md), kept apart from renditions.py.

- cache keys of perceptual renditions (a target and its candidate formats are part of the
  key; the fixed `quality`, a mere fallback, is not);
- rendering with the facts a rendition reports (`quality`, `score`), the search running in
  the image pool once per rendition;
- the facts an answer reports, from the stored row — rows made before migration 0010 hold
  nulls there and were all fixed-quality renditions, so `quality` comes from the request's
  parameters (they produced that row: the key covers them) and `score`/`perceptual` are null.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

from pixelwand.imaging.params import DEFAULT_QUALITY, TransformParams
from pixelwand.imaging.perceptual import parse_formats
from pixelwand.imaging.pipeline import Rendered
from pixelwand.models import Rendition

LOSSLESS_QUALITY = 100  # what `quality` reports for PNG and lossless WEBP


def perceptual_cache_key(
    params: TransformParams, source_mime: str, base_key: Callable[[TransformParams, str], str]
) -> str:
    """The key of a perceptual rendition: the fixed-quality key of the same transform (every
    other parameter, present or future, counts as it does there) plus the target and formats."""
    auto = params.format == "AUTO"
    fixed = dataclasses.replace(
        params,
        format="JPEG" if auto else params.format,
        quality=DEFAULT_QUALITY,
        perceptual=None,
        formats=None,
    )
    formats = ",".join(params.formats or ()) if auto else ""
    canonical = "|".join(
        ("perceptual", str(params.perceptual), "AUTO" if auto else "", formats,
         base_key(fixed, source_mime))
    )  # fmt: skip
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def preset_params(preset: Any, params: TransformParams) -> TransformParams:
    """A stored preset's target and formats added to its fixed parameters."""
    perceptual = getattr(preset, "perceptual", None)
    if perceptual is None and params.format != "AUTO":
        return params
    formats = getattr(preset, "formats", None)
    return dataclasses.replace(
        params,
        perceptual=perceptual or "auto:high",
        formats=parse_formats(formats) if formats else None,
    )


def fixed_quality(rendered: Rendered, params: TransformParams) -> int:
    """The encoder setting a fixed-quality rendition used (what its answer reports)."""
    return LOSSLESS_QUALITY if rendered.format == "PNG" else params.quality


def rendition_facts(row: Rendition, params: TransformParams) -> dict[str, Any]:
    quality = row.quality
    if quality is None:  # made before migration 0010: a fixed-quality rendition
        quality = LOSSLESS_QUALITY if row.format == "PNG" else params.quality
    return {
        "width": row.width,
        "height": row.height,
        "bytes": row.size,
        "quality": quality,
        "score": row.score,
        "perceptual": row.perceptual,
    }
