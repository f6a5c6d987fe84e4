"""The Storage contract, run unchanged on every backend (`storage` is parametrized).

Signed URLs are fetched for real on S3; the local backend's URLs are served by the app, so
here only their shape is checked (the HTTP tests exercise them end to end).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from pixelwand.storage import ObjectNotFound, Storage

MiB = 1024 * 1024

Key = Callable[[str], str]


async def test_put_head_read_range_and_stream_round_trip(storage: Storage, key: Key) -> None:
    data = os.urandom(3 * MiB + 123)
    await storage.put(key("blob.bin"), data, "application/octet-stream")

    info = await storage.head(key("blob.bin"))
    assert info is not None
    assert info.size == len(data)
    assert info.content_type in (None, "application/octet-stream")

    assert await storage.read_range(key("blob.bin"), 0, 16) == data[:16]
    assert await storage.read_range(key("blob.bin"), MiB, 4096) == data[MiB : MiB + 4096]
    assert await storage.read_range(key("blob.bin"), len(data) - 10, 100) == data[-10:]
    assert await storage.read_range(key("blob.bin"), len(data), 100) == b""

    chunk_size = 256 * 1024
    chunks = [c async for c in storage.stream(key("blob.bin"), chunk_size=chunk_size)]
    assert b"".join(chunks) == data
    assert len(chunks) >= len(data) // chunk_size
    assert all(0 < len(c) <= chunk_size for c in chunks)


async def test_put_replaces_an_object(storage: Storage, key: Key) -> None:
    await storage.put(key("a.txt"), b"first version", "text/plain")
    await storage.put(key("a.txt"), b"second", "text/plain")

    info = await storage.head(key("a.txt"))
    assert info is not None and info.size == len(b"second")
    assert b"".join([c async for c in storage.stream(key("a.txt"))]) == b"second"


async def test_empty_object(storage: Storage, key: Key) -> None:
    await storage.put(key("empty"), b"", "application/octet-stream")

    info = await storage.head(key("empty"))
    assert info is not None and info.size == 0
    assert await storage.read_range(key("empty"), 0, 10) == b""
    assert [c async for c in storage.stream(key("empty"))] == []


async def test_head_of_a_missing_object_is_none(storage: Storage, key: Key) -> None:
    assert await storage.head(key("missing")) is None


async def test_reading_a_missing_object_raises_object_not_found(storage: Storage, key: Key) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.read_range(key("missing"), 0, 10)
    with pytest.raises(ObjectNotFound):
        async for _ in storage.stream(key("missing")):
            pass


async def test_delete_many_removes_objects_and_ignores_missing_keys(
    storage: Storage, key: Key
) -> None:
    await storage.put(key("a"), b"a", "text/plain")
    await storage.put(key("b"), b"b", "text/plain")
    await storage.put(key("kept"), b"k", "text/plain")

    await storage.delete_many([key("a"), key("never-existed"), key("b"), key("a")])

    assert await storage.head(key("a")) is None
    assert await storage.head(key("b")) is None
    assert await storage.head(key("kept")) is not None
    await storage.delete_many([key("a")])  # deleting again is not an error
    await storage.delete_many([])


async def test_delete_many_handles_more_keys_than_one_request_takes(
    storage: Storage, key: Key
) -> None:
    # S3's DeleteObjects takes 1000 keys; objects on both sides of that boundary must go.
    keys = [key(f"k{i:04}") for i in range(1500)]
    present = [keys[0], keys[999], keys[1000], keys[1499]]
    for k in present:
        await storage.put(k, b"x", "text/plain")

    await storage.delete_many(keys)

    for k in present:
        assert await storage.head(k) is None


async def test_presign_get_serves_the_bytes(
    storage: Storage, storage_backend: str, key: Key
) -> None:
    await storage.put(key("photo.png"), b"not really a png", "image/png")

    url = await storage.presign_get(key("photo.png"), 60)

    if storage_backend == "local":
        assert url.startswith(f"http://testserver/files/{quote(key('photo.png'))}?")
        assert "sig=" in url and "exp=" in url
        return
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"not really a png"


async def test_presign_get_overrides_type_and_names_the_download(
    storage: Storage, storage_backend: str, key: Key
) -> None:
    await storage.put(key("raw"), b"data", "application/octet-stream")

    url = await storage.presign_get(
        key("raw"), 60, content_type="image/webp", filename="café photo.webp"
    )

    if storage_backend == "local":
        assert "ct=image%2Fwebp" in url
        return
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("inline;")  # an image type the service accepts
    assert "filename*=UTF-8''caf%C3%A9%20photo.webp" in disposition
    # Anything else is a download, never rendered by a browser in the store's origin.
    url = await storage.presign_get(key("raw"), 60, content_type="video/mp4", filename="a.mp4")
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-disposition"].startswith("attachment;")


async def test_presign_put_describes_the_upload(
    storage: Storage, storage_backend: str, key: Key
) -> None:
    before = dt.datetime.now(dt.UTC)

    upload = await storage.presign_put(key("up.png"), "image/png", 1234, 300)

    assert upload.method == "PUT"
    assert upload.headers == {"Content-Type": "image/png"}
    assert before + dt.timedelta(seconds=290) < upload.expires_at
    assert upload.expires_at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=300)
    expected_prefix = {"local": "http://testserver/files/", "s3": "http://127.0.0.1:"}[
        storage_backend
    ]
    assert upload.url.startswith(expected_prefix)


async def test_check_passes_when_the_store_answers(storage: Storage) -> None:
    await storage.check()
