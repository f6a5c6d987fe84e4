"""Transform parameters: parsed and validated once, trusted everywhere after.

Messages use the API's camelCase names, since they go straight back to the client.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pixelwand.errors import BadRequest

FORMATS = ("JPEG", "PNG", "WEBP", "AVIF")
DEFAULT_QUALITY = 85
MAX_DIMENSION = 16384

_FORMAT_ALIASES = {"JPG": "JPEG"}
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "AVIF": "avif"}
_MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "AVIF": "image/avif"}
# Sources exported in their own format when no format is asked for.
_OWN_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/avif": "AVIF"}
# Sources whose format is not an output format: PNG when they have alpha, else JPEG.
_CONVERTED_SOURCES = frozenset({"image/gif", "image/tiff"})
# Formats whose encoder ignores `quality`: two requests differing only in it share a rendition.
_LOSSLESS = frozenset({"PNG"})
# Bump when the pipeline's output changes for the same parameters, so that cached renditions
# made by the old code are not served for the new.
_KEY_VERSION = "1"
# ASCII digits only: int() would also read "1_0", "+5", " 5" and "٣".
_INTEGER = re.compile(r"-?[0-9]{1,10}")
# Where a crop (preserveAspect false) keeps the picture: `center` is today's behaviour;
# `focal` keeps the asset's focal point; `attention` and `entropy` are libvips' smartcrop.
GRAVITIES = ("center", "focal", "attention", "entropy")


@dataclass(frozen=True, slots=True)
class TransformParams:
    """A validated export transform. Build it with `parse_transform` from client input."""

    format: str | None = None  # "JPEG" | "PNG" | "WEBP" | "AVIF"; None keeps the source's own
    quality: int = DEFAULT_QUALITY
    max_width: int | None = None
    max_height: int | None = None
    preserve_aspect: bool = True  # True: fit inside, never enlarge; False: exact size, crop
    gravity: str = "center"  # one of GRAVITIES; anything but center needs preserve_aspect False
    # Perceptual target, normalised ("auto:high", "auto:85"); None: fixed `quality`. With it,
    # `format` may also be "AUTO" (then `formats` lists the candidates; None: the default).
    perceptual: str | None = None
    formats: tuple[str, ...] | None = None

    @classmethod
    def parse(
        cls,
        format: str | None = None,
        quality: int | str | None = None,
        max_width: int | str | None = None,
        max_height: int | str | None = None,
        preserve_aspect: bool | str | None = None,
        perceptual: str | None = None,
        formats: str | list[str] | None = None,
        gravity: str | None = None,
    ) -> TransformParams:
        return parse_transform(
            format,
            quality,
            max_width,
            max_height,
            preserve_aspect,
            gravity=gravity,
            perceptual=perceptual,
            formats=formats,
        )


def parse_transform(
    format: str | None = None,
    quality: int | str | None = None,
    max_width: int | str | None = None,
    max_height: int | str | None = None,
    preserve_aspect: bool | str | None = None,
    gravity: str | None = None,
    perceptual: str | None = None,
    formats: str | list[str] | None = None,
) -> TransformParams:
    """Validate client input (GraphQL values or query-string text) into TransformParams.

    None means "not given" everywhere. Raises BadRequest with a message naming the field.
    `quality` may also be the `auto…` shorthand of `perceptual` (REST).
    """
    from pixelwand.imaging.perceptual import parse_perceptual_args

    format_, quality_, perceptual_, formats_, auto = parse_perceptual_args(
        format, quality, perceptual, formats
    )
    fmt = "AUTO" if auto else _parse_format(format_)
    q = _parse_int("quality", quality_, 1, 100)
    width = _parse_int("maxWidth", max_width, 1, MAX_DIMENSION)
    height = _parse_int("maxHeight", max_height, 1, MAX_DIMENSION)
    keep_aspect = _parse_bool("preserveAspect", preserve_aspect)
    if keep_aspect is False and (width is None or height is None):
        raise BadRequest("preserveAspect false needs both maxWidth and maxHeight")
    return TransformParams(
        format=fmt,
        quality=DEFAULT_QUALITY if q is None else q,
        max_width=width,
        max_height=height,
        preserve_aspect=True if keep_aspect is None else keep_aspect,
        gravity=parse_gravity(gravity, preserve_aspect=keep_aspect is not False),
        perceptual=perceptual_,
        formats=formats_,
    )


def parse_gravity(value: object, *, preserve_aspect: bool) -> str:
    """`gravity`, normalised to lower case; anything but center needs a crop to place."""
    if value is None:
        return "center"
    name = value.strip().lower() if isinstance(value, str) else None
    if name == "centre":
        name = "center"
    if name not in GRAVITIES:
        raise BadRequest(f"gravity must be one of {', '.join(GRAVITIES)}")
    if name != "center" and preserve_aspect:
        raise BadRequest(f"gravity {name} needs preserveAspect false (a crop to place)")
    return name


def resolve_format(params: TransformParams, source_mime: str, has_alpha: bool) -> str:
    """The output format: the one asked for, else the source's own (GIF/TIFF → PNG or JPEG)."""
    if params.format is not None:
        return params.format
    own = _OWN_FORMAT.get(source_mime)
    if own is not None:
        return own
    if source_mime in _CONVERTED_SOURCES:
        return "PNG" if has_alpha else "JPEG"
    raise BadRequest(f"{source_mime} cannot be exported as an image")


def params_key(params: TransformParams, output_format: str) -> str:
    """A stable 32-hex-digit key of the normalized transform, for caching renditions.

    Two transforms share a key exactly when they produce the same rendition of one source:
    `format=None` and the format it resolves to do; PNG ignores quality.
    """
    if output_format not in FORMATS:
        raise ValueError(f"unknown output format {output_format!r}")
    quality = "-" if output_format in _LOSSLESS else str(params.quality)
    fit = "fit" if params.preserve_aspect else "crop"
    canonical = "|".join(
        (
            _KEY_VERSION,
            output_format,
            quality,
            str(params.max_width or "-"),
            str(params.max_height or "-"),
            fit,
        )
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def extension_for(output_format: str) -> str:
    """File extension without the dot: "jpg", "png", "webp", "avif"."""
    try:
        return _EXTENSIONS[output_format]
    except KeyError:
        raise ValueError(f"unknown output format {output_format!r}") from None


def mime_for(output_format: str) -> str:
    try:
        return _MIME_TYPES[output_format]
    except KeyError:
        raise ValueError(f"unknown output format {output_format!r}") from None


# --- parsing helpers --------------------------------------------------------------------


def _parse_format(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        name = value.strip().upper()
        name = _FORMAT_ALIASES.get(name, name)
        if name in FORMATS:
            return name
    raise BadRequest("format must be one of JPEG, PNG, WEBP, AVIF")


def _parse_int(field: str, value: object, low: int, high: int) -> int | None:
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)
    if number is None or not low <= number <= high:
        raise BadRequest(f"{field} must be between {low} and {high}")
    return number


def _parse_bool(field: str, value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
    raise BadRequest(f"{field} must be true or false")
