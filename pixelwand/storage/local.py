"""Local-disk storage: a directory, with HMAC-signed URLs that the app itself serves.

Uploads stream to a temporary file beside the target and are renamed into place, so a
refused or interrupted upload leaves nothing visible.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from urllib.parse import quote, urlencode

from pixelwand.signing import SignatureError, Signer
from pixelwand.storage.base import ObjectInfo, ObjectNotFound, PresignedUpload, Storage
from pixelwand.storage.keys import is_safe_key


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
        # SHA-256 of each uploaded object, taken while its bytes streamed in (see
        # receive_upload): `<hex> <size> <mtime_ns>`, trusted only while the object still
        # has that size and modification time.
        self._hashes = self.root / ".sha256"
        self._put_signer = Signer(secret, "local-put")
        self._get_signer = Signer(secret, "local-get")

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
        fields = {"key": key, "exp": str(expires), "ct": content_type or ""}
        params = {"exp": str(expires), "sig": self._get_signer.sign(fields)}
        if content_type:
            params["ct"] = content_type
        return f"{self.base_url}/files/{quote(key)}?{urlencode(params)}"

    def verify_get(self, key: str, params: dict[str, str]) -> None:
        """Raise SignatureError unless the query string signs a GET of `key`."""
        fields = {"key": key, "exp": params.get("exp", ""), "ct": params.get("ct", "")}
        self._get_signer.verify(fields, params.get("sig", ""), params.get("exp", ""))

    async def receive_upload(
        self,
        key: str,
        params: dict[str, str],
        content_type: str | None,
        content_length: int | None,
        body: AsyncIterator[bytes],
    ) -> None:
        """Check a PUT against its signature, then stream it into place atomically."""
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
        target = self.root / key
        tmp = self._tmp / f"{uuid.uuid4().hex}.part"
        received = 0
        digest = hashlib.sha256()
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
                await asyncio.to_thread(write, chunk)
            if received != declared:
                raise UploadRejected(
                    400, f"body is {received} bytes but {declared} were declared at presign"
                )
            await asyncio.to_thread(f.close)
            await asyncio.to_thread(
                self._place_hashed, tmp, target, self._hashes / key, digest.hexdigest()
            )
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise

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
            return await asyncio.to_thread(read)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    async def stream(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        try:
            while chunk := await asyncio.to_thread(f.read, chunk_size):
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
            await asyncio.to_thread(write)
        finally:
            tmp.unlink(missing_ok=True)

    async def delete_many(self, keys: Iterable[str]) -> None:
        def remove(paths: list[Path]) -> None:
            for p in paths:
                p.unlink(missing_ok=True)

        safe = [k for k in keys if is_safe_key(k)]
        paths = [self.root / k for k in safe] + [self._hashes / k for k in safe]
        await asyncio.to_thread(remove, paths)

    async def local_path(self, key: str) -> Path | None:
        return self.path_for(key)

    async def check(self) -> None:
        from pixelwand.errors import StorageUnavailable

        if not await asyncio.to_thread(os.access, self.root, os.W_OK):
            raise StorageUnavailable()


def _move_into_place(tmp: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
