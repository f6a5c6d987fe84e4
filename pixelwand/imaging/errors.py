"""Imaging failures a client can cause; all are BAD_REQUEST to every transport."""

from __future__ import annotations

from pixelwand.errors import BadRequest


class UndecodableImage(BadRequest):
    """Corrupt, truncated, of a refused format, or not what its mime type says."""

    def __init__(self, message: str = "could not decode image") -> None:
        super().__init__(message)


class ImageTooLarge(BadRequest):
    """The header declares more pixels than the configured maximum (checked before decoding)."""

    def __init__(self, message: str = "image too large") -> None:
        super().__init__(message)


class ImageTooLargeToRender(BadRequest):
    """Rendering it would need more memory than one render may use (decided from the header)."""

    def __init__(self, message: str = "image too large to render") -> None:
        super().__init__(message)
