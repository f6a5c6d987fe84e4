"""The Storage interface every object-store backend implements."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from urllib.parse import quote

from pixelwand.errors import StorageUnavailable, map_exceptions
from pixelwand.imaging.sniff import IMAGE_MIME_TYPES

# Temporary files a process writes outside the store (a local copy of an S3 object to
# render); a process killed meanwhile leaves them behind, and the sweeper reaps them.
TEMP_PREFIX = "pixelwand-"
# Mime types served inline (the raster images the service accepts); anything else is
# served as an attachment, so that a browser never renders a download in the app's origin.
INLINE_TYPES = IMAGE_MIME_TYPES


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str | None = None


@dataclasses.dataclass(frozen=True)
class PartInfo:
    """One part of a multipart upload, as the store holds it."""

    part_number: int
    size: int
    etag: str


@dataclasses.dataclass(frozen=True)
class PresignedUpload:
    url: str
    method: str
    headers: dict[str, str]
    expires_at: dt.datetime


class Storage(abc.ABC):
    """An object store addressed by keys such as `orgs/<org>/<yyyy>/<mm>/<uuid>-<name>`.

    Backends raise `pixelwand.errors.StorageUnavailable` when the store cannot be reached
    within the configured timeout; a missing object is `None` from `head` and
    `ObjectNotFound` from the readers.
    """

    @abc.abstractmethod
    async def presign_put(
        self, key: str, content_type: str, size: int, expires_in: int
    ) -> PresignedUpload:
        """A URL the client PUTs to: it writes the *staged* object of `key`, never `key`
        itself, so what a client can write is never what an asset serves."""

    @abc.abstractmethod
    async def pin(self, key: str) -> bool:
        """Make the staged object of `key` the object `key`, by a move or a server-side
        copy (False: nothing is staged). Once pinned, no URL ever handed out writes `key`."""

    @abc.abstractmethod
    def staged(self, older_than: dt.datetime) -> AsyncIterator[str]:
        """Keys whose staged object was last written before `older_than` (for the sweeper)."""

    async def delete_staged(self, keys: Iterable[str]) -> None:
        """Delete the staged objects of `keys` (missing ones are not an error)."""
        await self.delete_many(staging_key(k) for k in keys)

    async def reap_temp_files(self, older_than: dt.datetime) -> int:
        """Remove temporary files this backend's paths write that are older than
        `older_than` (left by a process killed mid-way); returns how many went."""
        return await asyncio.to_thread(
            reap_files, Path(tempfile.gettempdir()), f"{TEMP_PREFIX}*", older_than
        )

    @abc.abstractmethod
    async def presign_get(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> str: ...

    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo | None: ...

    @abc.abstractmethod
    async def read_range(self, key: str, start: int, length: int) -> bytes:
        """Up to `length` bytes from `start` (fewer at the end of the object)."""

    @abc.abstractmethod
    def stream(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """The whole object, chunk by chunk, never all in memory."""

    @abc.abstractmethod
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    @abc.abstractmethod
    async def delete_many(self, keys: Iterable[str]) -> None:
        """Delete objects; keys that do not exist are not an error."""

    async def known_sha256(self, key: str) -> str | None:
        """The object's SHA-256 (hex) when the backend took it while the bytes came in and it
        still describes the object; None otherwise (the caller reads the bytes back)."""
        return None

    async def local_path(self, key: str) -> Path | None:
        """A filesystem path holding the object, when the backend has one (local disk)."""
        return None

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        """A file holding the object for as long as the block runs.

        The object itself on local disk; otherwise it is streamed into a temporary file, so
        memory stays bounded by one chunk whatever the object's size.
        """
        path = await self.local_path(key)
        if path is not None:
            yield path
            return
        with map_exceptions(StorageUnavailable):  # the temp disk full or read-only
            fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=Path(key).suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in self.stream(key):
                    with map_exceptions(StorageUnavailable):
                        await asyncio.to_thread(f.write, chunk)
            yield Path(name)
        finally:
            os.unlink(name)

    # --- multipart uploads (docs/multipart.md) ----------------------------------------------
    # `upload_id` below is the store's own id, returned by create_multipart. A store without
    # multipart support keeps these defaults, and multipart starts answer 400.

    async def create_multipart(self, key: str, content_type: str) -> str:
        """Begin a multipart upload of `key`; returns the store's upload id."""
        raise MultipartUnsupported()

    async def presign_part(
        self, key: str, upload_id: str, part_number: int, size: int, expires_in: int
    ) -> PresignedUpload:
        """A URL that PUTs part `part_number` (exactly `size` bytes)."""
        raise MultipartUnsupported()

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """The parts received so far, by part number; ObjectNotFound if the upload is gone."""
        raise MultipartUnsupported()

    async def complete_multipart(self, key: str, upload_id: str, parts: list[PartInfo]) -> None:
        """Join `parts` (in order) into the object at `key` and forget the upload."""
        raise MultipartUnsupported()

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Forget the upload and its parts; an unknown upload is not an error."""
        raise MultipartUnsupported()

    @abc.abstractmethod
    async def check(self) -> None:
        """Raise StorageUnavailable unless the store answers (readiness probe)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class ObjectNotFound(Exception):
    """The key names no object in the store."""


class MultipartUnsupported(Exception):
    """This store has no multipart uploads."""


def staging_key(key: str) -> str:
    """Where the client's PUT for `key` lands until finalize pins it."""
    return f"incoming/{key}"


def content_disposition(content_type: str | None, filename: str) -> str:
    """`inline` for the image types the service accepts, `attachment` for anything else;
    with an ASCII fallback name and the exact UTF-8 one (RFC 6266)."""
    kind = "inline" if content_type in INLINE_TYPES else "attachment"
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def reap_files(folder: Path, pattern: str, older_than: dt.datetime) -> int:
    """Delete the files in `folder` matching `pattern` last written before `older_than`."""
    cutoff = older_than.timestamp()
    removed = 0
    for path in folder.glob(pattern):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another process reaped it first
            continue
    return removed
