"""Large generated files for upload tests, written and hashed a MiB at a time."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from tests.helpers import make_image, make_mp4_head

MIB = 1024 * 1024


def write_file(path: Path, size: int, *, mime: str = "video/mp4", seed: int = 0) -> str:
    """`size` bytes starting like a `mime` file, then pseudo-random; returns its sha256."""
    head = make_image() if mime == "image/jpeg" else make_mp4_head(64)
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        first = head[:size]
        f.write(first)
        digest.update(first)
        written = len(first)
        while written < size:
            chunk = rng.randbytes(min(MIB, size - written))
            f.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return digest.hexdigest()


def read_part(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


async def stored_sha256(storage, key: str) -> str:
    digest = hashlib.sha256()
    async for chunk in storage.stream(key):
        digest.update(chunk)
    return digest.hexdigest()
