"""Local-disk storage: a directory, with HMAC-signed URLs that the app itself serves.

Uploads stream to a temporary file (`.tmp/*.part`) and are renamed into their staged place
(`incoming/<key>`), so a refused or interrupted upload leaves nothing visible; finalize pins
the staged file to `<key>` with a rename. A process killed mid-upload leaves its `.part`
file, which the sweeper reaps once it is older than the upload retention. Disk faults (full,
read-only, failing) are StorageUnavailable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from urllib.parse import quote, urlencode

from pixelwand.errors import StorageUnavailable, map_exceptions
from pixelwand.signing import SignatureError, Signer
from pixelwand.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    PartInfo,
    PresignedUpload,
    Storage,
    reap_files,
    staging_key,
)
from pixelwand.storage.keys import is_safe_key
from pixelwand.storage.local_parts import PartRejected, PartsDirectory

_FINAL = "this upload is finalized: its bytes can no longer be replaced"


class UploadRejected(Exception):
    """A PUT to a presigned local URL that does not match what was signed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LocalStorage(Storage):
    def __init__(self, root: Path, *, secret: bytes, base_url: str) -> None:
        self.root = root.resolve()
        self.base_url = base_url.rstrip("/")
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._staging = self.root / staging_key("")
        # SHA-256 of each uploaded object, taken while its bytes streamed in (see
        # receive_upload): `<hex> <size> <mtime_ns>`, trusted only while the object still
        # has that size and modification time.
        self._hashes = self.root / ".sha256"
        self._put_signer = Signer(secret, "local-put")
        self._get_signer = Signer(secret, "local-get")
        self._part_signer = Signer(secret, "local-part")
        self._parts = PartsDirectory(self.root / ".multipart", self._tmp)

    # --- paths ---------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        if not is_safe_key(key):
            raise ObjectNotFound(key)
        return self.root / key

    # --- signed URLs ---------------------------------------------------------------------

    async def presign_put(
        self, key: str, content_type: str, size: int, expires_in: int
    ) -> PresignedUpload:
        expires = int(time.time()) + expires_in
        fields = {"key": key, "ct": content_type, "size": str(size), "exp": str(expires)}
        query = urlencode(
            {"ct": content_type, "size": size, "exp": expires, "sig": self._put_signer.sign(fields)}
        )
        return PresignedUpload(
            url=f"{self.base_url}/files/{quote(key)}?{query}",
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=dt.datetime.fromtimestamp(expires, dt.UTC),
        )

    async def presign_get(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> str:
        expires = int(time.time()) + expires_in
        fields = {"key": key, "exp": str(expires), "ct": content_type or "", "fn": filename or ""}
        params = {"exp": str(expires), "sig": self._get_signer.sign(fields)}
        if content_type:
            params["ct"] = content_type
        if filename:
            params["fn"] = filename
        return f"{self.base_url}/files/{quote(key)}?{urlencode(params)}"

    def verify_get(self, key: str, params: dict[str, str]) -> None:
        """Raise SignatureError unless the query string signs a GET of `key`."""
        fields = {
            "key": key,
            "exp": params.get("exp", ""),
            "ct": params.get("ct", ""),
            "fn": params.get("fn", ""),
        }
        self._get_signer.verify(fields, params.get("sig", ""), params.get("exp", ""))

    async def receive_upload(
        self,
        key: str,
        params: dict[str, str],
        content_type: str | None,
        content_length: int | None,
        body: AsyncIterator[bytes],
        *,
        still_open: Callable[[str], Awaitable[bool]],
    ) -> None:
        """Check a PUT against its signature, then stream it into its staged place
        atomically. `still_open(key)` says whether the upload may still be written (False
        once finalized: 409), asked before the body is read and again before it lands."""
        fields = {
            "key": key,
            "ct": params.get("ct", ""),
            "size": params.get("size", ""),
            "exp": params.get("exp", ""),
        }
        try:
            self._put_signer.verify(fields, params.get("sig", ""), fields["exp"])
        except SignatureError as exc:
            raise UploadRejected(403, f"upload URL refused: {exc}") from None
        if not is_safe_key(key):
            raise UploadRejected(400, "invalid storage key")
        declared = int(fields["size"])
        if (content_type or "").split(";")[0].strip().lower() != fields["ct"].lower():
            raise UploadRejected(
                400, f"Content-Type must be {fields['ct']!r}, as declared at presign"
            )
        if content_length is not None and content_length != declared:
            raise UploadRejected(
                400, f"body is {content_length} bytes but {declared} were declared at presign"
            )
        if not await still_open(key):
            raise UploadRejected(409, _FINAL)
        target = self.root / staging_key(key)
        tmp = self._tmp / f"{uuid.uuid4().hex}.part"
        received = 0
        digest = hashlib.sha256()
        with map_exceptions(StorageUnavailable):
            f = await asyncio.to_thread(open, tmp, "wb")

        def write(chunk: bytes) -> None:
            f.write(chunk)
            digest.update(chunk)  # on the same thread hop: the hash costs the loop nothing

        try:
            async for chunk in body:
                received += len(chunk)
                if received > declared:
                    raise UploadRejected(
                        400, f"body is larger than the {declared} bytes declared at presign"
                    )
                with map_exceptions(StorageUnavailable):
                    await asyncio.to_thread(write, chunk)
            if received != declared:
                raise UploadRejected(
                    400, f"body is {received} bytes but {declared} were declared at presign"
                )
            with map_exceptions(StorageUnavailable):
                await asyncio.to_thread(f.close)
            # Finalize pins the staged file under a lease: a PUT that lands after that
            # only ever replaces a staged file, never the asset's bytes.
            if not await still_open(key):
                raise UploadRejected(409, _FINAL)
            # The hash is kept under the asset's key: pinning renames the staged file,
            # which keeps the size and mtime the hash is trusted by.
            with map_exceptions(StorageUnavailable):
                await asyncio.to_thread(
                    self._place_hashed, tmp, target, self._hashes / key, digest.hexdigest()
                )
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise

    # --- multipart uploads (parts in local_parts.py) --------------------------------------

    async def create_multipart(self, key: str, content_type: str) -> str:
        if not is_safe_key(key):
            raise ObjectNotFound(key)
        with map_exceptions(StorageUnavailable):
            return await asyncio.to_thread(self._parts.new_upload)

    async def presign_part(
        self, key: str, upload_id: str, part_number: int, size: int, expires_in: int
    ) -> PresignedUpload:
        # S3's own shape: PUT /<key>?partNumber=N&uploadId=ID, plus the signed fields.
        expires = int(time.time()) + expires_in
        fields = {
            "key": key,
            "uploadId": upload_id,
            "partNumber": str(part_number),
            "size": str(size),
            "exp": str(expires),
        }
        query = urlencode(
            {
                "partNumber": part_number,
                "uploadId": upload_id,
                "size": size,
                "exp": expires,
                "sig": self._part_signer.sign(fields),
            }
        )
        return PresignedUpload(
            url=f"{self.base_url}/files/{quote(key)}?{query}",
            method="PUT",
            headers={},
            expires_at=dt.datetime.fromtimestamp(expires, dt.UTC),
        )

    def verify_part(self, key: str, params: dict[str, str]) -> tuple[str, int, int]:
        """(upload id, part number, size) that the query string signs; else PartRejected."""
        fields = {name: params.get(name, "") for name in ("uploadId", "partNumber", "size", "exp")}
        fields["key"] = key
        try:
            self._part_signer.verify(fields, params.get("sig", ""), fields["exp"])
        except SignatureError as exc:
            raise PartRejected(403, f"part upload URL refused: {exc}") from None
        return fields["uploadId"], int(fields["partNumber"]), int(fields["size"])

    async def receive_part(
        self,
        upload_id: str,
        part_number: int,
        size: int,
        content_length: int | None,
        body: AsyncIterator[bytes],
        before_commit,
    ) -> PartInfo:
        """Stream one signed part into place (PartRejected when it does not fit)."""
        with map_exceptions(StorageUnavailable):
            return await self._parts.receive(
                upload_id, part_number, size, content_length, body, before_commit
            )

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        with map_exceptions(StorageUnavailable):
            return await self._parts.scan(upload_id)

    async def complete_multipart(self, key: str, upload_id: str, parts: list[PartInfo]) -> None:
        with map_exceptions(StorageUnavailable):
            await self._parts.assemble(upload_id, parts, self.path_for(key))

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        with map_exceptions(StorageUnavailable):
            await self._parts.remove(upload_id)

    async def pin(self, key: str) -> bool:
        staged = self.root / staging_key(key)
        if not is_safe_key(key):
            return False
        try:
            with map_exceptions(StorageUnavailable):
                await asyncio.to_thread(_move_into_place, staged, self.root / key)
        except FileNotFoundError:
            return False
        return True

    async def staged(self, older_than: dt.datetime) -> AsyncIterator[str]:
        cutoff = older_than.timestamp()

        def walk() -> list[str]:
            found = []
            for folder, _, files in os.walk(self._staging):
                for name in files:
                    path = Path(folder, name)
                    try:
                        if path.stat().st_mtime < cutoff:
                            found.append(path.relative_to(self._staging).as_posix())
                    except FileNotFoundError:
                        continue
            return found

        with map_exceptions(StorageUnavailable):
            keys = await asyncio.to_thread(walk)
        for key in keys:
            yield key

    async def reap_temp_files(self, older_than: dt.datetime) -> int:
        removed = await super().reap_temp_files(older_than)
        with map_exceptions(StorageUnavailable):
            return removed + await asyncio.to_thread(reap_files, self._tmp, "*.part", older_than)

    @staticmethod
    def _place_hashed(tmp: Path, target: Path, sidecar: Path, hexdigest: str) -> None:
        st = os.stat(tmp)  # a rename keeps size and mtime: they identify these bytes
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        sidecar.write_text(f"{hexdigest} {st.st_size} {st.st_mtime_ns}")
        _move_into_place(tmp, target)

    async def known_sha256(self, key: str) -> str | None:
        if not is_safe_key(key):
            return None

        def read() -> str | None:
            try:
                hexdigest, size, mtime = (self._hashes / key).read_text().split()
                st = os.stat(self.root / key)
            except (OSError, ValueError):
                return None
            if (str(st.st_size), str(st.st_mtime_ns)) != (size, mtime):
                return None  # the object was replaced after this hash was taken
            return hexdigest

        return await asyncio.to_thread(read)

    # --- objects -------------------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            with map_exceptions(StorageUnavailable):
                st = await asyncio.to_thread(os.stat, self.path_for(key))
        except (FileNotFoundError, NotADirectoryError, ObjectNotFound):
            return None
        return ObjectInfo(size=st.st_size)

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        path = self.path_for(key)

        def read() -> bytes:
            with open(path, "rb") as f:
                f.seek(start)
                return f.read(length)

        try:
            with map_exceptions(StorageUnavailable):
                return await asyncio.to_thread(read)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    async def stream(
        self,
        key: str,
        chunk_size: int = 1024 * 1024,
        *,
        start: int = 0,
        length: int | None = None,
    ) -> AsyncIterator[bytes]:
        """The object's bytes, or `length` of them from `start` (a download's Range)."""
        path = self.path_for(key)
        try:
            with map_exceptions(StorageUnavailable):
                f = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        try:
            if start:
                f.seek(start)
            left = length
            while left is None or left > 0:
                size = chunk_size if left is None else min(chunk_size, left)
                with map_exceptions(StorageUnavailable):
                    chunk = await asyncio.to_thread(f.read, size)
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            f.close()

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path_for(key)
        tmp = self._tmp / f"{uuid.uuid4().hex}.part"

        def write() -> None:
            with open(tmp, "wb") as f:
                f.write(data)
            _move_into_place(tmp, path)

        try:
            with map_exceptions(StorageUnavailable):
                await asyncio.to_thread(write)
        finally:
            tmp.unlink(missing_ok=True)

    async def delete_many(self, keys: Iterable[str]) -> None:
        def remove(paths: list[Path]) -> None:
            for p in paths:
                p.unlink(missing_ok=True)

        safe = [k for k in keys if is_safe_key(k)]
        paths = [self.root / k for k in safe] + [self._hashes / k for k in safe]
        with map_exceptions(StorageUnavailable):
            await asyncio.to_thread(remove, paths)

    async def local_path(self, key: str) -> Path | None:
        return self.path_for(key)

    async def check(self) -> None:
        if not await asyncio.to_thread(os.access, self.root, os.W_OK):
            raise StorageUnavailable()


def _move_into_place(tmp: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
