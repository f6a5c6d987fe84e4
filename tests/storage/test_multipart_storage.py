"""The multipart part of the Storage contract, on every backend (`storage` is parametrized),
and the local store's promise to never hold a part in memory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from pixelwand.storage import ObjectNotFound, Storage
from pixelwand.storage.local import LocalStorage

MiB = 1024 * 1024

Key = Callable[[str], str]


async def _noop() -> None:
    return None


async def _chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def put_part(storage: Storage, key: str, upload_id: str, n: int, data: bytes) -> str:
    """Send a part the way a client does on this backend; its ETag."""
    if isinstance(storage, LocalStorage):
        part = await storage.receive_part(upload_id, n, len(data), len(data), _chunks(data), _noop)
        return part.etag
    signed = await storage.presign_part(key, upload_id, n, len(data), 300)
    async with httpx.AsyncClient() as client:
        r = await client.put(signed.url, content=data, headers=signed.headers)
    assert r.status_code == 200, r.text
    return r.headers["ETag"]


async def _read(storage: Storage, key: str) -> bytes:
    return b"".join([c async for c in storage.stream(key)])


async def test_parts_in_any_order_join_into_the_object(storage: Storage, key: Key) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1234)]
    upload_id = await storage.create_multipart(key("joined.bin"), "video/mp4")
    assert await storage.list_parts(key("joined.bin"), upload_id) == []
    etags = {}
    for n in (3, 1, 2):
        etags[n] = await put_part(storage, key("joined.bin"), upload_id, n, parts[n - 1])
    listed = await storage.list_parts(key("joined.bin"), upload_id)
    assert [(p.part_number, p.size) for p in listed] == [(1, 5 * MiB), (2, 5 * MiB), (3, 1234)]
    assert [p.etag for p in listed] == [etags[1], etags[2], etags[3]]
    assert await storage.head(key("joined.bin")) is None  # nothing visible before complete

    await storage.complete_multipart(key("joined.bin"), upload_id, listed)
    assert await _read(storage, key("joined.bin")) == b"".join(parts)
    with pytest.raises(ObjectNotFound):
        await storage.list_parts(key("joined.bin"), upload_id)


async def test_a_part_sent_again_replaces_the_first(storage: Storage, key: Key) -> None:
    first, second, last = os.urandom(5 * MiB), os.urandom(5 * MiB), b"end"
    upload_id = await storage.create_multipart(key("again.bin"), "video/mp4")
    old = await put_part(storage, key("again.bin"), upload_id, 1, first)
    await asyncio.sleep(1.1)  # SeaweedFS dates part uploads to the second (docs/multipart.md)
    new = await put_part(storage, key("again.bin"), upload_id, 1, second)
    await put_part(storage, key("again.bin"), upload_id, 2, last)
    listed = await storage.list_parts(key("again.bin"), upload_id)
    assert [p.part_number for p in listed] == [1, 2]
    assert listed[0].etag == new != old
    await storage.complete_multipart(key("again.bin"), upload_id, listed)
    assert await _read(storage, key("again.bin")) == second + last


async def test_abort_forgets_the_parts(storage: Storage, key: Key) -> None:
    upload_id = await storage.create_multipart(key("gone.bin"), "video/mp4")
    await put_part(storage, key("gone.bin"), upload_id, 1, b"some bytes")
    await storage.abort_multipart(key("gone.bin"), upload_id)
    with pytest.raises(ObjectNotFound):
        await storage.list_parts(key("gone.bin"), upload_id)
    await storage.abort_multipart(key("gone.bin"), upload_id)  # again: not an error
    assert await storage.head(key("gone.bin")) is None


async def test_local_parts_never_sit_in_memory(tmp_path: Path) -> None:
    """Receiving and joining 3 x 24 MiB parts allocates about one chunk at a time."""
    store = LocalStorage(tmp_path / "storage", secret=b"test", base_url="http://testserver")
    part = 24 * MiB
    chunk = os.urandom(256 * 1024)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(part // len(chunk)):
            yield chunk

    upload_id = await store.create_multipart("orgs/o/big.bin", "video/mp4")
    tracemalloc.start()
    try:
        for n in (1, 2, 3):
            await store.receive_part(upload_id, n, part, None, body(), _noop)
        listed = await store.list_parts("orgs/o/big.bin", upload_id)
        await store.complete_multipart("orgs/o/big.bin", upload_id, listed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\nlocal multipart: peak traced allocation {peak / MiB:.2f} MiB for 3 x 24 MiB parts")
    # One part alone would be 24 MiB; the margin covers what else the process allocates
    # meanwhile (the suite's app runs background workers on the same loop).
    assert peak < 12 * MiB
    digest = hashlib.sha256()
    async for piece in store.stream("orgs/o/big.bin"):
        digest.update(piece)
    assert digest.hexdigest() == hashlib.sha256(chunk * (3 * part // len(chunk))).hexdigest()
    assert not any((tmp_path / "storage" / ".multipart").iterdir())
