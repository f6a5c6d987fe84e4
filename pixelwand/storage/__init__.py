"""Object storage backends, chosen by PIXELWAND_STORAGE_URL."""

from __future__ import annotations

from pathlib import Path

from pixelwand.storage.base import ObjectInfo, ObjectNotFound, PartInfo, PresignedUpload, Storage

__all__ = [
    "ObjectInfo",
    "ObjectNotFound",
    "PartInfo",
    "PresignedUpload",
    "Storage",
    "storage_from_url",
]


def storage_from_url(
    url: str,
    *,
    secret: bytes,
    base_url: str,
    timeout_seconds: float = 10.0,
    copy_timeout_seconds: float = 900.0,
) -> Storage:
    """`local:DIRECTORY` or `s3://BUCKET?endpoint=URL&region=REGION`."""
    if url.startswith("local:"):
        from pixelwand.storage.local import LocalStorage

        return LocalStorage(Path(url.removeprefix("local:")), secret=secret, base_url=base_url)
    if url.startswith("s3://"):
        from pixelwand.storage.s3 import S3Storage

        return S3Storage.from_url(
            url, timeout_seconds=timeout_seconds, copy_timeout_seconds=copy_timeout_seconds
        )
    raise ValueError(f"unsupported storage URL {url!r}: use local:DIR or s3://BUCKET?endpoint=...")
