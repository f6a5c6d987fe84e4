"""Render one export of an image: load → shrink → colour → encode.

Every step stays lazy until `encode` pulls pixels through the whole chain, so an image is decoded
once, top to bottom (sequential access), with memory bounded by a few scanlines of the source
plus the output — never the whole source, never a full decode followed by a resize. (JPEG and
PNG encoders stream too; libwebp and libheif take whole frames, so WEBP and AVIF hold the
uncompressed output, at most the pixel budget x 4 bytes.)

- load: read the header only; refuse formats that are not what the asset says, declared sizes
  over the pixel budget (before a single pixel is decoded), and HEVC-coded HEIF.
- shrink: `thumbnail`, which shrinks on load (JPEG DCT scaling, WebP/AVIF/TIFF pyramid or
  subsampled decode), applies the EXIF orientation, fits or centre-crops, brings 16-bit, float,
  Lab and XYZ sources to 8-bit sRGB, and converts through an embedded ICC profile (or, for
  CMYK without one, libvips' built-in CMYK profile) to sRGB.
- colour: 8 bits per sample in sRGB; untagged greyscale stays one band (JPEG and PNG store it
  natively and every viewer reads it as sRGB grey; WebP and AVIF encoders expand it). Alpha is
  flattened onto white when the output format has none.
- encode: the constants below; all metadata stripped.

Blocking, CPU-bound and GIL-free: call it through `ImagePool.run`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyvips

from pixelwand import metrics
from pixelwand.errors import BadRequest
from pixelwand.imaging.budget import render_memory
from pixelwand.imaging.errors import ImageTooLarge, UndecodableImage
from pixelwand.imaging.params import TransformParams, extension_for, mime_for, resolve_format
from pixelwand.imaging.probe import open_header, upright_size

__all__ = [
    "ImageTooLarge",
    "Rendered",
    "UndecodableImage",
    "check_source",
    "memory_needed",
    "output_format_for",
    "render",
    "render_image",
]

log = logging.getLogger(__name__)

# --- encoder settings -------------------------------------------------------------------
# Measured on two cores, 6000x4000 JPEG → 800x800 centre crop, one vips thread; shrink-on-load
# decode alone is ~105 ms of each figure.

# Baseline, not progressive, and Huffman tables optimised per image only up to a size: both
# progressive and optimised coding make libjpeg hold the whole image's coefficients (measured,
# 6000x4000 unresized: peak RSS 48 MB streaming, 181 MB with optimize_coding). Optimised tables
# make an 800x800 ~4% smaller for ~3 ms, so they are used up to JPEG_OPTIMIZE_MAX_PIXELS
# (~5.5 bytes per pixel of extra memory, so at most ~22 MB). Chroma subsampling stays libvips'
# default (4:2:0 below Q 90, 4:4:4 from 90).
JPEG_OPTIONS = {"interlace": False}
JPEG_OPTIMIZE_MAX_PIXELS = 4_000_000

# zlib level; quality does not apply to PNG. 3 and 6 gave identical bytes here, 9 was both
# slower (+40%) and larger, so the default stands.
PNG_COMPRESSION = 6

# libwebp method 0-6. 4 (the default) encodes in ~55 ms; 6 took twice as long for 1.5% fewer
# bytes, 0 was 6% larger.
WEBP_EFFORT = 4

# libaom speed = 9 - effort. Effort 3 encodes in ~300 ms (~180 ms on two vips threads) and is
# within 0.5% of the size of libvips' default effort 4, which takes ~2.3 s (a cliff: libaom turns
# on its slow tools at speed 5); effort 2 saves ~60 ms for files 5% larger; 9 took 18 s.
# 8 bits: what leaves the colour step is 8-bit sRGB anyway.
AVIF_EFFORT = 3
AVIF_OPTIONS = {"compression": "av1", "bitdepth": 8}

# Largest side each encoder writes (measured): fit mode shrinks to it, crop mode refuses it.
_MAX_SIDE = {"JPEG": 65_500, "PNG": 10_000_000, "WEBP": 16_383, "AVIF": 16_384}
# A box no image exceeds (libvips' VIPS_MAX_COORD): "no limit on this side".
_UNBOUNDED = 10_000_000
# Which loader must have read a source of each mime type.
_LOADER_FOR_MIME = {
    "image/jpeg": "jpegload",
    "image/png": "pngload",
    "image/webp": "webpload",
    "image/gif": "gifload",
    "image/tiff": "tiffload",
    "image/avif": "heifload",
}
# Truncated or corrupt data fails the render instead of padding the image with grey.
# `thumbnail_buffer`/`thumbnail_source` ignore their own `fail_on` argument in libvips 8.18
# (a truncated JPEG still renders); through the loader options it is honoured.
_LOADER_OPTIONS = "fail_on=error"


@dataclass(frozen=True, slots=True)
class Rendered:
    data: bytes
    format: str  # "JPEG" | "PNG" | "WEBP" | "AVIF"
    width: int
    height: int
    mime_type: str

    @property
    def extension(self) -> str:
        return extension_for(self.format)


def render(
    source: Path | bytes,
    params: TransformParams,
    *,
    source_mime: str,
    max_pixels: int,
    focal: tuple[float, float] | None = None,
) -> Rendered:
    """Encode `source` (a file path or its bytes) as `params` ask.

    `focal` is the point (fractions of the upright image) a `gravity=focal` crop keeps;
    None keeps the centre. Raises ImageTooLarge when the header declares more than
    `max_pixels` (first frame of a GIF), UndecodableImage when the bytes are corrupt,
    truncated or not a `source_mime` image, and BadRequest when the asked-for size cannot be
    written in the output format.
    """
    started = time.perf_counter()
    with _decode_errors():
        header = _load(source, source_mime, max_pixels)
        output_format = params.format or resolve_format(
            params, source_mime, _has_alpha(header, source_mime)
        )
        image = _shrink(
            _thumbnailer(source),
            params,
            output_format,
            _is_colour_managed(header),
            upright_size(header),
            focal,
        )
        image = _colour(image, output_format)
        data = _encode(image, output_format, params.quality)
    metrics.renders.labels(output_format).inc()
    metrics.render_seconds.labels(output_format).observe(time.perf_counter() - started)
    return Rendered(
        data=data,
        format=output_format,
        width=image.width,
        height=image.height,
        mime_type=mime_for(output_format),
    )


def render_image(
    image: pyvips.Image,
    params: TransformParams,
    *,
    focal: tuple[float, float] | None = None,
) -> Rendered:
    """Encode pixels already in memory (a video's poster frame, 8-bit sRGB) as `params`
    ask, through the same shrink, colour and encode steps; without a format, JPEG."""
    output_format = params.format or "JPEG"
    untouched = (
        params.preserve_aspect
        and params.max_width is None
        and params.max_height is None
        and max(image.width, image.height) <= _MAX_SIDE[output_format]
    )
    with _decode_errors():
        shrunk = (
            image
            if untouched
            else _shrink(
                lambda width, **options: image.thumbnail_image(width, **options),
                params,
                output_format,
                False,
                (image.width, image.height),
                focal,
            )
        )
        shrunk = _colour(shrunk, output_format)
        data = _encode(shrunk, output_format, params.quality)
        image = shrunk
    return Rendered(
        data=data,
        format=output_format,
        width=image.width,
        height=image.height,
        mime_type=mime_for(output_format),
    )


def check_source(source: Path | bytes, source_mime: str, max_pixels: int) -> bool:
    """The header checks `render` makes (the mime type's loader, the pixel budget);
    answers whether the pixels are colour managed (an ICC profile or CMYK)."""
    with _decode_errors():
        return _is_colour_managed(_load(source, source_mime, max_pixels))


def output_format_for(
    source: Path | bytes, params: TransformParams, *, source_mime: str, max_pixels: int
) -> str:
    """The format `render` will produce, for computing a rendition's cache key up front.

    Free unless no format is asked for and the source is a GIF: every GIF decodes with an alpha
    band, so whether it is transparent takes decoding its first frame.
    """
    if params.format is not None:
        return params.format
    with _decode_errors():
        header = _load(source, source_mime, max_pixels)
        return resolve_format(params, source_mime, _has_alpha(header, source_mime))


def memory_needed(
    source: Path | bytes, params: TransformParams, *, source_mime: str, max_pixels: int
) -> int:
    """Estimated peak bytes of `render(source, params, ...)`, from the header alone
    (budget.render_memory). Raises what `render` raises for a bad header."""
    with _decode_errors():
        header = _load(source, source_mime, max_pixels)
        output_format = params.format or resolve_format(params, source_mime, header.hasalpha())
        return render_memory(
            header,
            max_width=params.max_width,
            max_height=params.max_height,
            preserve_aspect=params.preserve_aspect,
            output_format=output_format,
        )


# --- steps ------------------------------------------------------------------------------


def _load(source: Path | bytes, source_mime: str, max_pixels: int) -> pyvips.Image:
    expected = _LOADER_FOR_MIME.get(source_mime)
    if expected is None:
        raise BadRequest(f"{source_mime} cannot be exported as an image")
    if isinstance(source, Path) and not source.is_file():
        raise FileNotFoundError(source)  # our storage's fault, not the image's
    header = open_header(source, fail_on="error")
    loader = header.get("vips-loader") if header.get_typeof("vips-loader") else ""
    if not loader.startswith(expected):
        raise UndecodableImage()
    # GIF and multi-page TIFF/AVIF open at their first page, so this is that page's area.
    if header.width * header.height > max_pixels:
        raise ImageTooLarge()
    # libheif parses HEIC headers but this build has no HEVC decoder: refuse before decoding.
    if loader.startswith("heifload") and (
        not header.get_typeof("heif-compression") or header.get("heif-compression") != "av1"
    ):
        raise UndecodableImage()
    return header


def _has_alpha(header: pyvips.Image, source_mime: str) -> bool:
    if source_mime == "image/gif":
        # Decodes the first frame (a sequential pass; the header image is not used again).
        return header.hasalpha() and header[header.bands - 1].min() < 255
    return header.hasalpha()


def _is_colour_managed(header: pyvips.Image) -> bool:
    """Pixels that mean something only through a profile: embedded ICC, or CMYK."""
    return bool(header.get_typeof("icc-profile-data")) or header.interpretation == "cmyk"


# `gravity` → libvips' `crop` (Interesting) for the gravities that libvips places itself.
_CROP = {"center": "centre", "attention": "attention", "entropy": "entropy"}


def _thumbnailer(source: Path | bytes):
    """`thumbnail(width, **options)` of the source, shrinking on load."""

    def thumbnail(width: int, **options: object) -> pyvips.Image:
        if isinstance(source, Path):
            return pyvips.Image.thumbnail_source(
                pyvips.Source.new_from_file(str(source)),
                width,
                option_string=_LOADER_OPTIONS,
                **options,
            )
        return pyvips.Image.thumbnail_buffer(
            source, width, option_string=_LOADER_OPTIONS, **options
        )

    return thumbnail


def _shrink(
    thumbnail,
    params: TransformParams,
    output_format: str,
    colour_managed: bool,
    upright: tuple[int, int],
    focal: tuple[float, float] | None,
) -> pyvips.Image:
    limit = _MAX_SIDE[output_format]
    if params.preserve_aspect:
        width = min(params.max_width or _UNBOUNDED, limit)
        height = min(params.max_height or _UNBOUNDED, limit)
        options: dict[str, object] = {"height": height, "size": "down"}
    else:
        assert params.max_width is not None and params.max_height is not None
        width, height = params.max_width, params.max_height
        if max(width, height) > limit:
            raise BadRequest(f"{output_format} images are at most {limit} pixels on a side")
        if max(width / upright[0], height / upright[1]) > 1:
            return _enlarged_crop(
                thumbnail, width, height, params.gravity, colour_managed, upright, focal
            )
        if params.gravity == "focal":
            return _focal_crop(thumbnail, width, height, colour_managed, upright, focal)
        options = {"height": height, "size": "both", "crop": _CROP[params.gravity]}
    if colour_managed:
        # Asked for only then: with it, libvips also turns untagged grey into three bands.
        options["output_profile"] = "srgb"
    return thumbnail(width, **options)


def _enlarged_crop(
    thumbnail,
    width: int,
    height: int,
    gravity: str,
    colour_managed: bool,
    upright: tuple[int, int],
    focal: tuple[float, float] | None,
) -> pyvips.Image:
    """A crop that enlarges the source: the box of the output's shape is cut from the source
    first (placed by `gravity`), then enlarged to exactly width x height.

    Scaling the whole source to cover the box first, as a shrinking crop does, makes an
    intermediate image of up to (scale x source) pixels: a 10,000x10 PNG cut to 100x1000
    became one gigapixel (4 GB, 30 s of CPU). This way no image is larger than the source or
    the output."""
    source_w, source_h = upright
    if source_w * height >= width * source_h:  # wider than the box: its height binds
        box_w, box_h = max(1, min(source_w, round(source_h * width / height))), source_h
    else:
        box_w, box_h = source_w, max(1, min(source_h, round(source_w * height / width)))
    options: dict[str, object] = {"height": box_h, "size": "both"}
    if colour_managed:
        options["output_profile"] = "srgb"
    if gravity == "focal":
        image = thumbnail(source_w, **{**options, "height": source_h})  # whole, upright
        fx, fy = focal if focal is not None else (0.5, 0.5)
        left = min(max(round(fx * image.width - box_w / 2), 0), image.width - box_w)
        top = min(max(round(fy * image.height - box_h / 2), 0), image.height - box_h)
        box = image.crop(left, top, box_w, box_h)
    else:  # at scale 1, libvips places the box itself
        box = thumbnail(box_w, crop=_CROP[gravity], **options)
    box = box.resize(width / box_w, vscale=height / box_h)
    if box.width != width or box.height != height:  # a pixel off after rounding
        box = box.gravity("centre", width, height, extend="copy")
    return box


def _focal_crop(
    thumbnail,
    width: int,
    height: int,
    colour_managed: bool,
    upright: tuple[int, int],
    focal: tuple[float, float] | None,
) -> pyvips.Image:
    """Scale to cover width x height (shrinking on load), then cut that box out around the
    focal point, pushed inwards where the point is nearer an edge than half the box."""
    source_w, source_h = upright
    options: dict[str, object] = {"size": "both"}
    if colour_managed:
        options["output_profile"] = "srgb"
    if source_w * height >= width * source_h:  # wider than the box: its height binds
        image = thumbnail(_UNBOUNDED, height=height, **options)
    else:
        image = thumbnail(width, height=_UNBOUNDED, **options)
    if image.width < width or image.height < height:  # one pixel short after rounding
        scale = max(width / image.width, height / image.height)
        image = image.resize(scale * 1.0001)
    fx, fy = focal if focal is not None else (0.5, 0.5)
    left = min(max(round(fx * image.width - width / 2), 0), image.width - width)
    top = min(max(round(fy * image.height - height / 2), 0), image.height - height)
    return image.crop(left, top, width, height)


def _colour(image: pyvips.Image, output_format: str) -> pyvips.Image:
    grey = image.interpretation in ("b-w", "grey16")
    target = "b-w" if grey else "srgb"
    if image.interpretation != target or image.format != "uchar":
        image = image.colourspace(target)
    if output_format == "JPEG" and image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    return image


def _encode(image: pyvips.Image, output_format: str, quality: int) -> bytes:
    if output_format == "JPEG":
        optimize = image.width * image.height <= JPEG_OPTIMIZE_MAX_PIXELS
        return image.jpegsave_buffer(
            Q=quality, optimize_coding=optimize, keep="none", **JPEG_OPTIONS
        )
    if output_format == "PNG":
        return image.pngsave_buffer(compression=PNG_COMPRESSION, keep="none")
    if output_format == "WEBP":
        return image.webpsave_buffer(Q=quality, effort=WEBP_EFFORT, keep="none")
    if output_format == "AVIF":
        return image.heifsave_buffer(Q=quality, effort=AVIF_EFFORT, keep="none", **AVIF_OPTIONS)
    raise ValueError(f"unknown output format {output_format!r}")


@contextlib.contextmanager
def _decode_errors() -> Iterator[None]:
    """libvips reports every failure as one exception type; the lazy chain means a corrupt
    source surfaces while encoding, so any libvips error here is the source's fault."""
    try:
        yield
    except pyvips.Error as exc:
        log.info("image did not decode: %s", str(exc).strip().replace("\n", " | ")[:500])
        raise UndecodableImage() from None
