"""Read an image's dimensions from its header, without decoding pixels."""

from __future__ import annotations

from pathlib import Path

import pyvips

from pixelwand.imaging.loaders import restrict_loaders


class UndecodableImage(Exception):
    """libvips could not read the image header."""


def image_dimensions(source: Path | bytes) -> tuple[int, int]:
    """(width, height) from the header of a file path or an in-memory head of a file.

    Blocking: call through the image pool or `asyncio.to_thread`.
    """
    restrict_loaders()
    try:
        if isinstance(source, Path):
            image = pyvips.Image.new_from_file(str(source), access="sequential")
        else:
            image = pyvips.Image.new_from_buffer(source, "", access="sequential")
        return image.width, image.height
    except pyvips.Error as exc:
        raise UndecodableImage(str(exc).splitlines()[0] if str(exc) else "unreadable") from None
