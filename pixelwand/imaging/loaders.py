"""Untrusted input: only the loaders of the accepted formats are allowed to run.

`block_untrusted_set` alone leaves loaders such as matrixload enabled, so every
VipsForeignLoad is blocked and only the allowlisted families are re-enabled.
"""

from __future__ import annotations

import threading

import pyvips

ALLOWED_LOADERS = (
    "VipsForeignLoadJpeg",
    "VipsForeignLoadPng",
    "VipsForeignLoadWebp",
    "VipsForeignLoadGif",
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
        pyvips.cache_set_max(0)
        pyvips.operation_block_set("VipsForeignLoad", True)
        for name in ALLOWED_LOADERS:
            pyvips.operation_block_set(name, False)
        _done = True
