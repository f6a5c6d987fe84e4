"""Read an image's dimensions from its header, without decoding pixels."""

from __future__ import annotations

from pathlib import Path

import pyvips

from pixelwand.imaging.errors import UndecodableImage
from pixelwand.imaging.loaders import restrict_loaders

__all__ = ["UndecodableImage", "image_dimensions", "open_header", "upright_size"]


def open_header(source: Path | bytes, **options: object) -> pyvips.Image:
    """A lazily-decoded, sequential image: reading its header decodes no pixels.

    Paths go through a Source so that a `[` in a file name is never read as loader options.
    Raises pyvips.Error; callers map it.
    """
    restrict_loaders()
    if isinstance(source, Path):
        return pyvips.Image.new_from_source(
            pyvips.Source.new_from_file(str(source)), "", access="sequential", **options
        )
    return pyvips.Image.new_from_buffer(source, "", access="sequential", **options)


def upright_size(image: pyvips.Image) -> tuple[int, int]:
    """(width, height) as displayed: EXIF orientations 5-8 swap the two sides."""
    width, height = image.width, image.height
    if image.get_typeof("orientation") and image.get("orientation") in (5, 6, 7, 8):
        return height, width
    return width, height


def image_dimensions(source: Path | bytes) -> tuple[int, int]:
    """(width, height) as displayed, from the header of a file path or of a file's head.

    EXIF orientation is applied, so these are the dimensions of an unresized export. For a
    GIF they are the first frame's. Blocking: call through the image pool or `asyncio.to_thread`.
    """
    try:
        return upright_size(open_header(source))
    except pyvips.Error:
        raise UndecodableImage() from None
