"""Untrusted input: only the loaders of the accepted formats are allowed to run.

`block_untrusted_set` alone leaves loaders such as matrixload enabled, so every
VipsForeignLoad is blocked and only the allowlisted families are re-enabled.

Loaders in this libvips build (8.18, pyvips-binary): csv, matrix, raw, vips, svg, gif (the class
is `VipsForeignLoadNsgif`, not `...Gif`), uhdr (UltraHDR JPEG), png, jpeg, webp, tiff, heif.
There is no magick, pdf, fits, openslide, jxl or openexr loader at all. heifload decodes AV1
(AVIF) only: the bundled libheif has libaom but no libde265, so HEIC headers parse and the
pixels do not.
"""

from __future__ import annotations

import threading

import pyvips

ALLOWED_LOADERS = (
    "VipsForeignLoadJpeg",
    "VipsForeignLoadPng",
    "VipsForeignLoadWebp",
    "VipsForeignLoadNsgif",
    "VipsForeignLoadHeif",  # AVIF; the bundled libheif has no HEVC decoder, so no HEIC
    "VipsForeignLoadTiff",
)

_lock = threading.Lock()
_done = False


def restrict_loaders() -> None:
    """Idempotent; safe to call from any thread before loading untrusted bytes."""
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        # operation_block_set ignores names it does not know, which would silently block a
        # format we mean to accept (it did: GIF's class was listed as VipsForeignLoadGif).
        unknown = [name for name in ALLOWED_LOADERS if pyvips.type_from_name(name) == 0]
        if unknown:
            raise RuntimeError(f"libvips has no loader class {', '.join(unknown)}")
        pyvips.cache_set_max(0)
        pyvips.operation_block_set("VipsForeignLoad", True)
        for name in ALLOWED_LOADERS:
            pyvips.operation_block_set(name, False)
        _done = True
