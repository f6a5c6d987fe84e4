"""The local store's multipart uploads: one directory per upload, one file per part.

`<root>/.multipart/<upload id>/00001`, `00002`, … Each part streams into a temporary file in
its upload's directory and is renamed over the part's name, so a re-sent part replaces the
old one whole, and a refused or interrupted one leaves nothing. Completing copies the parts,
in order and a buffer at a time (the kernel's `copy_file_range` where it can), into a
temporary file that is then renamed to the object's key: no part is ever held in memory.
Aborting removes the directory; a part still arriving then finds no directory to be renamed
into and is dropped.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from pixelwand.storage.base import ObjectNotFound, PartInfo

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_PART_NAME = re.compile(r"^[0-9]{5}$")
_COPY_CHUNK = 8 * 1024 * 1024


class PartRejected(Exception):
    """A part PUT that does not match what was signed (status: the HTTP answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def etag_of(st: os.stat_result) -> str:
    """An opaque tag of one version of a part: a re-sent part gets a new one."""
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"'


class PartsDirectory:
    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self._tmp = tmp

    def new_upload(self) -> str:
        upload_id = uuid.uuid4().hex
        (self.root / upload_id).mkdir(parents=True)
        return upload_id

    def directory(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise ObjectNotFound(upload_id)
        return self.root / upload_id

    async def receive(
        self,
        upload_id: str,
        part_number: int,
        declared: int,
        content_length: int | None,
        body: AsyncIterator[bytes],
        before_commit: Callable[[], Awaitable[None]],
    ) -> PartInfo:
        """Stream one part into place; exactly `declared` bytes or nothing is kept."""
        try:
            directory = self.directory(upload_id)
        except ObjectNotFound:
            raise PartRejected(404, "multipart upload not found") from None
        if not await asyncio.to_thread(directory.is_dir):
            raise PartRejected(404, "multipart upload not found: it was completed or aborted")
        if content_length is not None and content_length != declared:
            raise PartRejected(
                400, f"part {part_number} is {content_length} bytes but must be {declared}"
            )
        tmp = directory / f".{uuid.uuid4().hex}.tmp"
        target = directory / f"{part_number:05d}"
        received = 0
        try:
            f = await asyncio.to_thread(open, tmp, "xb")
        except FileNotFoundError:
            raise PartRejected(404, "multipart upload not found: it was aborted") from None
        try:
            async for chunk in body:
                received += len(chunk)
                if received > declared:
                    raise PartRejected(
                        400, f"part {part_number} is larger than its {declared} bytes"
                    )
                await asyncio.to_thread(f.write, chunk)
            if received != declared:
                raise PartRejected(
                    400, f"part {part_number} is {received} bytes but must be {declared}"
                )
            await asyncio.to_thread(f.close)
            await before_commit()
            try:
                await asyncio.to_thread(os.replace, tmp, target)
                st = await asyncio.to_thread(os.stat, target)
            except FileNotFoundError:
                raise PartRejected(409, "multipart upload was completed or aborted") from None
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        return PartInfo(part_number=part_number, size=st.st_size, etag=etag_of(st))

    async def scan(self, upload_id: str) -> list[PartInfo]:
        directory = self.directory(upload_id)

        def read() -> list[PartInfo]:
            parts = []
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                raise ObjectNotFound(upload_id) from None
            for entry in entries:
                if not _PART_NAME.match(entry.name):
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:  # replaced or removed meanwhile
                    continue
                parts.append(PartInfo(int(entry.name), st.st_size, etag_of(st)))
            return sorted(parts, key=lambda p: p.part_number)

        return await asyncio.to_thread(read)

    async def assemble(self, upload_id: str, parts: list[PartInfo], target: Path) -> None:
        directory = self.directory(upload_id)

        def join() -> None:
            tmp = self._tmp / f"{uuid.uuid4().hex}.part"
            try:
                with open(tmp, "wb") as out:
                    for part in parts:
                        try:
                            src = open(directory / f"{part.part_number:05d}", "rb")  # noqa: SIM115
                        except FileNotFoundError:
                            raise ObjectNotFound(f"{upload_id}/{part.part_number}") from None
                        with src:
                            _copy(src.fileno(), out.fileno(), part.size)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            shutil.rmtree(directory, ignore_errors=True)

        await asyncio.to_thread(join)

    async def remove(self, upload_id: str) -> None:
        try:
            directory = self.directory(upload_id)
        except ObjectNotFound:
            return
        await asyncio.to_thread(shutil.rmtree, directory, True)


def _copy(src: int, dst: int, size: int) -> None:
    """Append `size` bytes of `src` to `dst`, a bounded buffer at a time."""
    copied = 0
    try:
        while copied < size:
            n = os.copy_file_range(src, dst, min(_COPY_CHUNK, size - copied))
            if n == 0:
                break
            copied += n
    except (AttributeError, OSError):  # no copy_file_range here (another OS, another fs)
        os.lseek(src, copied, os.SEEK_SET)
        while copied < size and (chunk := os.read(src, min(1024 * 1024, size - copied))):
            view = memoryview(chunk)
            while view:
                view = view[os.write(dst, view) :]
            copied += len(chunk)
    if copied != size:
        raise ObjectNotFound(f"part shorter than {size} bytes")
