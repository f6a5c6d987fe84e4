"""`pixelwand upload`: find the files, hash them, skip what the organization already holds
(the `contentHash` list filter, 200 hashes a request), then presign → PUT → finalize in
parallel with a progress bar of files and bytes. Files at or above the multipart threshold
go in parts (pixelwand.client.multipart) with a resume file in the state directory, so that
the same command run again after a crash sends only the missing parts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pixelwand.client.api import Api, ClientError, error_message, with_retries
from pixelwand.client.multipart import UploadError, upload_file_async

HASH_BATCH = 200  # the list filter's limit
CHUNK = 1024 * 1024
MULTIPART_THRESHOLD = 64 * 1024 * 1024  # bytes: files this big or bigger go in parts

# What mimetypes may not know on a minimal system; anything unknown is sent as
# application/octet-stream so that the API answers with its own reason.
_EXTRA_TYPES = {
    ".avif": "image/avif",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
}


@dataclass
class FileResult:
    path: str
    status: str = "pending"  # uploaded | skipped | failed
    asset_id: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "assetId": self.asset_id,
            "error": self.error,
        }


@dataclass
class LocalFile:
    path: Path
    size: int
    sha256: str = ""
    result: FileResult | None = None
    sent: int = 0  # bytes counted on the progress bar so far


def discover(paths: Iterable[str]) -> tuple[list[Path], list[FileResult]]:
    """Files under `paths` (folders recursively, hidden files and folders skipped), in order."""
    found: list[Path] = []
    missing: list[FileResult] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():

            def unreadable(exc: OSError) -> None:
                missing.append(FileResult(str(exc.filename), "failed", error=_why(exc)))

            for root, dirs, files in os.walk(p, onerror=unreadable):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        candidate = Path(root) / name
                        if candidate.is_file() and candidate not in seen:
                            seen.add(candidate)
                            found.append(candidate)
                        elif not candidate.exists():  # a link to nothing: say so
                            missing.append(FileResult(str(candidate), "failed", error=BROKEN))
        elif p.is_file():
            if p not in seen:
                seen.add(p)
                found.append(p)
        else:
            missing.append(FileResult(str(p), "failed", error="no such file or directory"))
    return found, missing


BROKEN = "no such file or directory (a link to a missing file)"


def _why(exc: OSError) -> str:
    return f"cannot read the folder: {exc.strerror or exc}"


def state_dir() -> Path:
    """Where resume files live: $XDG_CACHE_HOME/pixelwand/uploads (~/.cache by default)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(cache) / "pixelwand" / "uploads"


def resume_file_for(directory: Path, server: str, path: Path, st: os.stat_result) -> Path:
    """One resume file per (server, absolute path, size, mtime): a changed file starts over."""
    key = json.dumps([server.rstrip("/"), str(path.resolve()), st.st_size, st.st_mtime_ns])
    return directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def mime_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _EXTRA_TYPES:
        return _EXTRA_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name, strict=False)
    return guessed or "application/octet-stream"


def api_name(path: Path) -> str:
    """The file's name as the API gets it: bytes that are not UTF-8 (a Latin-1 name from
    an old archive) become U+FFFD instead of failing the JSON encoding of the request."""
    return os.fsencode(path.name).decode("utf-8", "replace")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


async def existing_assets(api: Api, hashes: list[str]) -> tuple[dict[str, str], bool]:
    """contentHash → asset id for the hashes the organization already holds.

    The second value is False when the server does not filter by contentHash (an older
    server ignores the unknown parameter and answers everything without the field)."""
    found: dict[str, str] = {}
    for start in range(0, len(hashes), HASH_BATCH):
        if not await _look_up(api, hashes[start : start + HASH_BATCH], found):
            return {}, False
    return found, True


async def _look_up(api: Api, batch: list[str], found: dict[str, str]) -> bool:
    """Add the batch's known hashes to `found`; False when the server cannot filter. A
    proxy refusing the long URL (414, 431: 200 hashes make 15 kB) gets it in halves."""
    wanted = set(batch)
    page = 1
    while True:
        try:
            body = await api.call(
                "GET",
                "/assets",
                params={"contentHash": ",".join(batch), "page": page, "pageSize": 200},
            )
        except ClientError as exc:
            if exc.status not in (414, 431) or len(batch) == 1:
                raise
            half = len(batch) // 2
            return await _look_up(api, batch[:half], found) and await _look_up(
                api, batch[half:], found
            )
        for item in body["items"]:
            if "contentHash" not in item:
                return False
            if item["contentHash"] in wanted:
                found.setdefault(item["contentHash"], item["id"])
        if page >= body["totalPages"]:
            return True
        page += 1


class Uploader:
    def __init__(
        self,
        api: Api,
        *,
        tags: list[str],
        collection_id: str | None,
        on_bytes: Callable[[int], None],
        on_done: Callable[[FileResult], None],
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_concurrency: int = 4,
        resume_dir: Path | None = None,
    ) -> None:
        self.api = api
        self.multipart_threshold = multipart_threshold
        self.part_concurrency = part_concurrency
        self.resume_dir = resume_dir
        self.tags = tags
        self.collection_id = collection_id
        self.on_bytes = on_bytes
        self.on_done = on_done

    async def _put(self, presigned: dict[str, Any], local: LocalFile) -> None:
        async def body() -> AsyncIterator[bytes]:
            f = await asyncio.to_thread(open, local.path, "rb")
            try:
                while chunk := await asyncio.to_thread(f.read, CHUNK):
                    local.sent += len(chunk)
                    self.on_bytes(len(chunk))
                    yield chunk
            finally:
                f.close()

        headers = dict(presigned.get("headers") or {})
        headers["Content-Length"] = str(local.size)

        def send() -> Any:
            if local.sent:  # a retry: take back what the failed attempt counted
                self.on_bytes(-local.sent)
                local.sent = 0
            return self.api.http.request(
                presigned.get("method", "PUT"),
                presigned["uploadUrl"],
                content=body(),
                headers=headers,
            )

        response: httpx.Response = await with_retries(send, what="upload")
        if response.status_code >= 400:
            raise ClientError(error_message(response), response.status_code)

    async def _multipart(self, local: LocalFile, mime: str) -> dict[str, Any]:
        def progress(done: int, total: int) -> None:
            self.on_bytes(done - local.sent)
            local.sent = done

        directory = self.resume_dir or state_dir()
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        st = await asyncio.to_thread(local.path.stat)
        return await upload_file_async(
            local.path,
            api_url=self.api.base,
            api_key=self.api.key,
            mime_type=mime,
            size=local.size,
            progress=progress,
            concurrency=self.part_concurrency,
            resume_file=resume_file_for(directory, self.api.base, local.path, st),
            original_name=api_name(local.path),
            tags=self.tags or None,
            collection_id=self.collection_id,
            http=self.api.http,
        )

    async def _single(self, local: LocalFile, mime: str) -> dict[str, Any]:
        """presign → PUT → finalize."""
        name = api_name(local.path)
        presigned = await self.api.call(
            "POST",
            "/assets",
            json={"mode": "presign", "originalName": name, "mimeType": mime, "size": local.size},
        )
        await self._put(presigned, local)
        finalize: dict[str, Any] = {
            "mode": "finalize",
            "originalName": name,
            "mimeType": mime,
            "size": local.size,
            "storageKey": presigned["storageKey"],
        }
        if self.tags:
            finalize["tags"] = self.tags
        if self.collection_id:
            finalize["collectionId"] = self.collection_id
        asset: dict[str, Any] = await self.api.call("POST", "/assets", json=finalize)
        return asset

    async def upload(self, local: LocalFile) -> FileResult:
        assert local.result is not None
        result = local.result
        mime = mime_type(local.path)
        try:
            if local.size >= self.multipart_threshold:
                asset = await self._multipart(local, mime)
            else:
                asset = await self._single(local, mime)
            result.status, result.asset_id = "uploaded", asset["id"]
        except (ClientError, UploadError) as exc:
            result.status, result.error = "failed", exc.message
        except httpx.TransportError as exc:  # multipart parts after their own retries
            result.status, result.error = "failed", f"upload failed: {exc.__class__.__name__}"
        except OSError as exc:
            result.status, result.error = "failed", f"cannot read the file: {exc.strerror or exc}"
        self.on_bytes(local.size - local.sent)  # a failed file's bytes count as done
        local.sent = local.size
        self.on_done(result)
        return result
