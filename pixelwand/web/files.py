"""/files/{key}: the local backend's signed PUT (uploads, and multipart parts as
`?partNumber=N&uploadId=ID`, S3's own shape) and GET (downloads)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pixelwand import metrics
from pixelwand.services.assets import object_is_live
from pixelwand.services.multipart import part_upload_state
from pixelwand.services.uploads import upload_is_open
from pixelwand.signing import SignatureError
from pixelwand.storage.base import content_disposition
from pixelwand.storage.local import LocalStorage, UploadRejected
from pixelwand.storage.local_parts import PartRejected
from pixelwand.web.responses import rest_error


def _local(request: Request) -> LocalStorage | None:
    storage = request.app.state.runtime.storage
    return storage if isinstance(storage, LocalStorage) else None


async def put_file(request: Request) -> Response:
    storage = _local(request)
    if storage is None:
        return rest_error(404, "not found")
    length = request.headers.get("content-length")
    try:
        content_length = int(length) if length is not None else None
    except ValueError:
        return rest_error(400, "Content-Length must be a number")
    if "uploadId" in request.query_params:
        return await _put_part(request, storage, content_length)
    try:
        await storage.receive_upload(
            request.path_params["key"],
            dict(request.query_params),
            request.headers.get("content-type"),
            content_length,
            request.stream(),
            still_open=upload_is_open,
        )
    except UploadRejected as exc:
        return rest_error(exc.status, exc.message)
    return Response(status_code=200)


async def _put_part(
    request: Request, storage: LocalStorage, content_length: int | None
) -> Response:
    """One part of a multipart upload: signed, open (409 once completed), exact size."""
    key = request.path_params["key"]

    async def still_open() -> None:
        state = await part_upload_state(key, upload_id)
        if state is None:
            raise PartRejected(404, "multipart upload not found: it was aborted or has expired")
        if state == "final":
            raise PartRejected(409, "multipart upload is complete: its parts are final")

    try:
        upload_id, part_number, size = storage.verify_part(key, dict(request.query_params))
        await still_open()
        part = await storage.receive_part(
            upload_id, part_number, size, content_length, request.stream(), still_open
        )
    except PartRejected as exc:
        return rest_error(exc.status, exc.message)
    return Response(status_code=200, headers={"ETag": part.etag})


async def get_file(request: Request) -> Response:
    storage = _local(request)
    if storage is None:
        return rest_error(404, "not found")
    key = request.path_params["key"]
    params = dict(request.query_params)
    try:
        storage.verify_get(key, params)
    except SignatureError as exc:
        return rest_error(403, f"download URL refused: {exc}")
    # A deleted asset's original and renditions stop being served at once, even through
    # links handed out before the delete (the sweeper removes the bytes later).
    if not await object_is_live(key):
        return rest_error(404, "not found")
    path = storage.path_for(key)
    try:
        st = await asyncio.to_thread(os.stat, path)
    except FileNotFoundError:
        return rest_error(404, "not found")
    remaining = max(0, int(params["exp"]) - int(time.time()))
    headers = {
        "Content-Length": str(st.st_size),
        "Cache-Control": f"private, max-age={remaining}",
        # Objects are written once under their key and never changed in place.
        "ETag": f'"{st.st_size:x}-{st.st_mtime_ns:x}"',
        "Accept-Ranges": "bytes",
    }
    if _etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    if params.get("fn"):
        headers["Content-Disposition"] = content_disposition(params.get("ct"), params["fn"])
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=params.get("ct"))
    return _body(request, storage, key, headers, st.st_size, params.get("ct"))


def _body(
    request: Request,
    storage: LocalStorage,
    key: str,
    headers: dict[str, str],
    size: int,
    content_type: str | None,
) -> Response:
    """The object, or the one byte range the request asks for (206), or 416."""
    media_type = content_type or "application/octet-stream"
    try:
        wanted = _wanted_range(request, headers["ETag"], size)
    except _Unsatisfiable:
        return rest_error(
            416,
            f"range not satisfiable: the object has {size} bytes",
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        )
    if wanted is None:
        chunks = storage.stream(key)
        return StreamingResponse(_counted(chunks), media_type=media_type, headers=headers)
    start, end = wanted
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    chunks = storage.stream(key, start=start, length=end - start + 1)
    return StreamingResponse(_counted(chunks), 206, media_type=media_type, headers=headers)


class _Unsatisfiable(Exception):
    pass


def _wanted_range(request: Request, etag: str, size: int) -> tuple[int, int] | None:
    """RFC 9110 Range, as S3 answers it: one `bytes` range gives (first, last); no Range,
    a stale If-Range, several ranges or a malformed one give None (the whole object, 200);
    a range starting past the end raises _Unsatisfiable (416)."""
    header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if not header or (if_range is not None and if_range.strip() != etag):
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = (part.strip() for part in spec.partition("-"))
    if not dash or not all(p == "" or (p.isascii() and p.isdigit()) for p in (first, last)):
        return None
    if first == "":  # the last N bytes
        if last == "":  # "bytes=-": no range at all
            return None
        if int(last) == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - int(last)), size - 1
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise _Unsatisfiable
    return start, size - 1 if last == "" else min(int(last), size - 1)


async def _counted(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    sent = 0
    try:
        async for chunk in chunks:
            sent += len(chunk)
            yield chunk
    finally:
        metrics.bytes_served.labels("download").inc(sent)


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: a list of tags or `*`, compared weakly."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(
        tag.strip().removeprefix("W/") == etag.removeprefix("W/")
        for tag in if_none_match.split(",")
    )
