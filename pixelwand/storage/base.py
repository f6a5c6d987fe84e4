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


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str | None = None


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
    ) -> PresignedUpload: ...

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
        fd, name = tempfile.mkstemp(prefix="pixelwand-", suffix=Path(key).suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in self.stream(key):
                    await asyncio.to_thread(f.write, chunk)
            yield Path(name)
        finally:
            os.unlink(name)

    @abc.abstractmethod
    async def check(self) -> None:
        """Raise StorageUnavailable unless the store answers (readiness probe)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class ObjectNotFound(Exception):
    """The key names no object in the store."""
