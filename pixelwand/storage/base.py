"""The Storage interface every object-store backend implements."""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
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

    async def local_path(self, key: str) -> Path | None:
        """A filesystem path holding the object, when the backend has one (local disk)."""
        return None

    @abc.abstractmethod
    async def check(self) -> None:
        """Raise StorageUnavailable unless the store answers (readiness probe)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class ObjectNotFound(Exception):
    """The key names no object in the store."""
