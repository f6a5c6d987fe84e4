"""Upload a file in parts, in parallel, resuming after a crash (docs/multipart.md).

    from pixelwand.client.multipart import upload_file

    asset = upload_file(
        "video.mp4", api_url="http://127.0.0.1:8000", api_key="ak_live_…",
        mime_type="video/mp4", progress=lambda done, total: print(done, "/", total),
        resume_file="video.mp4.upload.json",
    )

`upload_file` is the blocking form of `upload_file_async`. Nothing is held in memory but
one read buffer per part in flight: each part streams from the file. With `resume_file`,
the upload's id and part size are written there right after the start, and a later call
with the same file and `resume_file` asks the server which parts it has
(`multipart-list`) and sends only the others; the resume file is removed once the asset
exists. A resume file naming another file (path, size or mtime changed) or an upload the
server no longer knows (aborted, expired) starts a new upload (the upload of a changed file
is aborted first: its quota reservation ends at once).

Only httpx and the standard library: no server-side imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import mimetypes
import os
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes the server holds, file size) as parts go out."""

READ_CHUNK = 1024 * 1024
SIGN_BATCH = 100  # part URLs asked for at once (they live an hour)
PART_ATTEMPTS = 3
API_ATTEMPTS = 6


class UploadError(Exception):
    """The server refused a step (status and its `error` message) or a part kept failing."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclasses.dataclass
class _State:
    upload_id: str
    storage_key: str
    part_size: int
    part_count: int
    path: str
    size: int
    mtime_ns: int


def upload_file(
    path: str | os.PathLike[str],
    *,
    api_url: str,
    api_key: str,
    mime_type: str | None = None,
    size: int | None = None,
    progress: ProgressCallback | None = None,
    concurrency: int = 4,
    resume_file: str | os.PathLike[str] | None = None,
    original_name: str | None = None,
    name: str | None = None,
    tags: list[str] | None = None,
    collection_id: str | None = None,
) -> dict[str, Any]:
    """Upload `path` in parts and return the asset (the API's JSON). Blocking.

    `mime_type` defaults to a guess from the file name; `size` to the file's size (given,
    it must match). See `upload_file_async` for the rest.
    """
    return asyncio.run(
        upload_file_async(
            path,
            api_url=api_url,
            api_key=api_key,
            mime_type=mime_type,
            size=size,
            progress=progress,
            concurrency=concurrency,
            resume_file=resume_file,
            original_name=original_name,
            name=name,
            tags=tags,
            collection_id=collection_id,
        )
    )


async def upload_file_async(
    path: str | os.PathLike[str],
    *,
    api_url: str,
    api_key: str,
    mime_type: str | None = None,
    size: int | None = None,
    progress: ProgressCallback | None = None,
    concurrency: int = 4,
    resume_file: str | os.PathLike[str] | None = None,
    original_name: str | None = None,
    name: str | None = None,
    tags: list[str] | None = None,
    collection_id: str | None = None,
    http: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """Upload `path` in parts, `concurrency` at a time, and return the asset JSON.

    `api_url` is the server's base (`http://host:8000`). `progress(done, total)` is called
    as bytes go out (done counts parts the server already had when resuming). `http` lets
    a caller bring its own client (proxies, tests); part URLs need no key and may point at
    another host (S3). Raises UploadError when the server refuses a step.
    """
    file = Path(path)
    st = await asyncio.to_thread(file.stat)
    if size is not None and size != st.st_size:
        raise ValueError(f"size {size} does not match the file's {st.st_size} bytes")
    mime = mime_type or mimetypes.guess_type(file.name)[0]
    if not mime:
        raise ValueError(f"cannot guess the mime type of {file.name}: pass mime_type")
    owned = http is None
    client = http or httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))
    api = _Api(client, api_url.rstrip("/") + "/api/v1/assets", api_key)
    try:
        state, held = await _resume_or_start(
            api, file, st, mime, original_name, Path(resume_file) if resume_file else None
        )
        extra: dict[str, Any] = {"tags": tags, "collectionId": collection_id, "name": name}
        if held is not None:  # None: the server already joined the parts (complete died)
            await _send_parts(api, client, file, state, held, progress, max(1, concurrency))
            # The ETags make the server check that no part changed since it was sent.
            extra["parts"] = [{"partNumber": n, "etag": held.get(n)} for n in sorted(held)]
        asset = await api.call(
            "multipart-complete",
            uploadId=state.upload_id,
            **{k: v for k, v in extra.items() if v is not None},
        )
    finally:
        if owned:
            await client.aclose()
    if resume_file:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(resume_file)
    return asset


class _Api:
    def __init__(self, client: httpx.AsyncClient, url: str, key: str) -> None:
        self.client = client
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}

    async def call(self, mode: str, **body: Any) -> Any:
        payload = {"mode": mode, **body}
        for attempt in range(API_ATTEMPTS):
            r = await self.client.post(self.url, json=payload, headers=self.headers)
            if r.status_code not in (429, 502, 503, 504) or attempt == API_ATTEMPTS - 1:
                break
            await asyncio.sleep(_retry_delay(r, attempt))  # rate limited or restarting
        if r.status_code >= 400:
            try:
                message = r.json().get("error", r.text)
            except ValueError:
                message = r.text
            raise UploadError(r.status_code, message)
        return r.json()


async def _resume_or_start(
    api: _Api,
    file: Path,
    st: os.stat_result,
    mime: str,
    original_name: str | None,
    resume_file: Path | None,
) -> tuple[_State, dict[int, str | None] | None]:
    """The upload to continue and the parts the server holds ({number: etag})."""
    stale: str | None = None
    state = None
    if resume_file:
        state, stale = _read_state(resume_file, file, st)
    if stale is not None:
        # The file changed since that upload began: it can never complete. Abort it, so
        # that its parts and its quota reservation go now, not when it expires.
        with contextlib.suppress(UploadError):
            await api.call("multipart-abort", uploadId=stale)
    if state is not None:
        try:
            listed = await api.call("multipart-list", uploadId=state.upload_id)
        except UploadError as exc:
            if exc.status == 409:  # completed already, or its complete died mid-way
                return state, None
            if exc.status not in (403, 404):
                raise
        else:
            return state, {
                p["partNumber"]: p["etag"]
                for p in listed["parts"]
                if p["size"] == _part_size(state, p["partNumber"])
            }
    started = await api.call(
        "multipart-start",
        originalName=original_name or file.name,
        mimeType=mime,
        size=st.st_size,
    )
    state = _State(
        upload_id=started["uploadId"],
        storage_key=started["storageKey"],
        part_size=started["partSize"],
        part_count=started["partCount"],
        path=str(await asyncio.to_thread(file.resolve)),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
    )
    if resume_file:
        tmp = resume_file.with_name(resume_file.name + ".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(state)))
        os.replace(tmp, resume_file)
    return state, {}


def _read_state(
    resume_file: Path, file: Path, st: os.stat_result
) -> tuple[_State | None, str | None]:
    """(the upload to resume, or None; the id of an upload of another version of the file
    that can never complete, or None)."""
    try:
        state = _State(**json.loads(resume_file.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None, None
    same = (state.path, state.size, state.mtime_ns) == (
        str(file.resolve()),
        st.st_size,
        st.st_mtime_ns,
    )
    if same:
        return state, None
    return None, (state.upload_id if state.path == str(file.resolve()) else None)


def _retry_delay(r: httpx.Response, attempt: int) -> float:
    """Retry-After when the server gave one, else exponential backoff with jitter."""
    with contextlib.suppress(ValueError):
        return min(30.0, max(0.0, float(r.headers.get("retry-after", ""))))
    return min(30.0, 0.5 * 2**attempt) * (0.75 + random.random() / 2)


def _part_size(state: _State, n: int) -> int:
    if n < state.part_count:
        return state.part_size
    return state.size - (state.part_count - 1) * state.part_size


async def _send_parts(
    api: _Api,
    client: httpx.AsyncClient,
    file: Path,
    state: _State,
    held: dict[int, str | None],
    progress: ProgressCallback | None,
    concurrency: int,
) -> None:
    todo = [n for n in range(1, state.part_count + 1) if n not in held]
    done = sum(_part_size(state, n) for n in held)

    def report(delta: int) -> None:
        nonlocal done
        done += delta
        if progress is not None:
            progress(done, state.size)

    report(0)
    for i in range(0, len(todo), SIGN_BATCH):
        batch = todo[i : i + SIGN_BATCH]
        signed = await api.call("multipart-sign", uploadId=state.upload_id, partNumbers=batch)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for part in signed["parts"]:
            queue.put_nowait(part)

        async def worker(queue: asyncio.Queue[dict[str, Any]] = queue) -> None:
            while not queue.empty():
                part = queue.get_nowait()
                etag = await _put_part(client, file, state, part, report)
                held[part["partNumber"]] = etag

        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(batch))):
                group.create_task(worker())


async def _put_part(
    client: httpx.AsyncClient,
    file: Path,
    state: _State,
    part: dict[str, Any],
    report: Callable[[int], None],
) -> str | None:
    """Send one part (retrying network failures and 5xx); its ETag, when answered."""
    n = part["partNumber"]
    length = _part_size(state, n)
    offset = (n - 1) * state.part_size
    headers = {**part["headers"], "Content-Length": str(length)}
    for attempt in range(1, PART_ATTEMPTS + 1):
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            with open(file, "rb") as f:  # noqa: ASYNC230 - reads run in a thread below
                await asyncio.to_thread(f.seek, offset)
                remaining = length
                while remaining:
                    chunk = await asyncio.to_thread(f.read, min(READ_CHUNK, remaining))
                    if not chunk:
                        raise OSError(f"{file} shrank while uploading")
                    remaining -= len(chunk)
                    sent += len(chunk)
                    report(len(chunk))
                    yield chunk

        try:
            r = await client.request(part["method"], part["url"], content=body(), headers=headers)
        except httpx.TransportError:
            report(-sent)
            if attempt == PART_ATTEMPTS:
                raise
            continue
        if r.status_code < 300:
            return r.headers.get("ETag")
        report(-sent)
        if r.status_code == 429 and attempt < PART_ATTEMPTS:
            await asyncio.sleep(_retry_delay(r, attempt))
            continue
        if r.status_code < 500 or attempt == PART_ATTEMPTS:
            raise UploadError(r.status_code, f"part {n}: {r.text[:500]}")
    raise UploadError(0, f"part {n}: no attempt left")  # not reached: the loop raises
