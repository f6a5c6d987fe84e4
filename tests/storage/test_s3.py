"""What only the S3 backend does: presigned PUTs enforced by the store, outages, buckets.

Run against a real SeaweedFS (the session `seaweedfs` fixture), which the outage test stops
and restarts on the same ports and data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from pixelwand.errors import StorageUnavailable
from pixelwand.storage import s3 as s3_module
from pixelwand.storage import storage_from_url
from pixelwand.storage.base import staging_key
from pixelwand.storage.s3 import S3Storage
from tests.support.seaweedfs import SeaweedFS

Key = Callable[[str], str]

TIMEOUT = 2.0
HUNG_TIMEOUT = 1.0  # every call waits out the whole timeout here, so keep it short


# --- presigned uploads ------------------------------------------------------------------


async def test_presigned_put_with_the_signed_content_type_stores_the_object(
    s3_storage: S3Storage, key: Key
) -> None:
    upload = await s3_storage.presign_put(key("up.png"), "image/png", 9, 60)

    async with httpx.AsyncClient() as client:
        response = await client.put(upload.url, content=b"PNG bytes", headers=upload.headers)

    assert response.status_code == 200, response.text
    # The PUT writes the staged object, never the key an asset serves.
    assert await s3_storage.head(key("up.png")) is None
    info = await s3_storage.head(staging_key(key("up.png")))
    assert info is not None
    assert (info.size, info.content_type) == (9, "image/png")


async def test_pin_copies_the_staged_bytes_and_later_puts_never_reach_them(
    s3_storage: S3Storage, key: Key
) -> None:
    upload = await s3_storage.presign_put(key("up.png"), "image/png", 9, 60)
    async with httpx.AsyncClient() as client:
        assert (
            await client.put(upload.url, content=b"PNG bytes", headers=upload.headers)
        ).is_success
        assert await s3_storage.pin(key("up.png"))
        # The URL is still valid: a second PUT replaces the staged object only.
        again = await client.put(upload.url, content=b"<script>!", headers=upload.headers)
        assert again.status_code == 200
    assert await s3_storage.read_range(key("up.png"), 0, 100) == b"PNG bytes"
    info = await s3_storage.head(key("up.png"))
    assert info is not None and info.content_type == "image/png"
    assert await s3_storage.read_range(staging_key(key("up.png")), 0, 100) == b"<script>!"
    assert not await s3_storage.pin(key("nothing-staged"))


async def test_pin_above_the_copy_limit_copies_part_by_part(
    s3_storage: S3Storage, key: Key
) -> None:
    # The same path as an object above CopyObject's 5 GiB, with the limits scaled down.
    s3_storage.copy_limit = 6 * 1024 * 1024
    s3_storage.copy_part_bytes = 5 * 1024 * 1024
    data = os.urandom(13 * 1024 * 1024 + 7)  # three parts, the last one short
    await s3_storage.put(staging_key(key("big.mp4")), data, "video/mp4")
    assert await s3_storage.pin(key("big.mp4"))
    info = await s3_storage.head(key("big.mp4"))
    assert info is not None and info.size == len(data)
    assert b"".join([c async for c in s3_storage.stream(key("big.mp4"))]) == data


async def test_staged_lists_what_was_written_before_a_time(s3_storage: S3Storage, key: Key) -> None:
    import datetime as dt

    await s3_storage.put(staging_key(key("a")), b"a", "text/plain")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    listed = [k async for k in s3_storage.staged(older_than=later)]
    assert key("a") in listed
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    assert key("a") not in [k async for k in s3_storage.staged(older_than=earlier)]


@pytest.mark.parametrize("headers", [{"Content-Type": "image/jpeg"}, {}], ids=["other", "none"])
async def test_presigned_put_with_another_content_type_is_refused(
    s3_storage: S3Storage, key: Key, headers: dict[str, str]
) -> None:
    upload = await s3_storage.presign_put(key("up.png"), "image/png", 9, 60)

    async with httpx.AsyncClient() as client:
        response = await client.put(upload.url, content=b"PNG bytes", headers=headers)

    assert response.status_code == 403
    assert await s3_storage.head(staging_key(key("up.png"))) is None


@pytest.mark.parametrize("body", [b"PNG", b"PNG bytes, and more"], ids=["shorter", "longer"])
async def test_presigned_put_of_another_size_is_refused(
    s3_storage: S3Storage, key: Key, body: bytes
) -> None:
    upload = await s3_storage.presign_put(key("up.png"), "image/png", 9, 60)

    async with httpx.AsyncClient() as client:
        response = await client.put(upload.url, content=body, headers=upload.headers)

    assert response.status_code == 403
    assert await s3_storage.head(staging_key(key("up.png"))) is None


# --- outages ----------------------------------------------------------------------------


def _calls(storage: S3Storage, key: Key) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Every Storage method that talks to the store."""

    async def drain() -> bytes:
        return b"".join([c async for c in storage.stream(key("kept"))])

    return {
        "head": lambda: storage.head(key("kept")),
        "read_range": lambda: storage.read_range(key("kept"), 0, 4),
        "stream": drain,
        "put": lambda: storage.put(key("new"), b"new", "text/plain"),
        "delete_many": lambda: storage.delete_many([key("new")]),
        "check": storage.check,
        "ensure_bucket": storage.ensure_bucket,
    }


async def _assert_all_unavailable(storage: S3Storage, key: Key) -> None:
    """Each call fails with StorageUnavailable within about the configured timeout."""
    for name, call in _calls(storage, key).items():
        began = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await call()
        elapsed = time.monotonic() - began
        assert elapsed < storage.timeout_seconds + 1, f"{name} took {elapsed:.1f} s to fail"


@pytest.mark.slow
async def test_outage_raises_storage_unavailable_then_recovers(
    seaweedfs: SeaweedFS, key: Key
) -> None:
    storage = S3Storage.from_url(seaweedfs.storage_url, timeout_seconds=TIMEOUT)
    try:
        await storage.put(key("kept"), b"kept bytes", "text/plain")

        seaweedfs.stop()
        try:
            await _assert_all_unavailable(storage, key)
            # Signing needs no store: URLs can still be handed out.
            assert (await storage.presign_get(key("kept"), 60)).startswith(seaweedfs.endpoint)
            await storage.presign_put(key("new"), "text/plain", 3, 60)
        finally:
            seaweedfs.start()

        # The same client recovers; nothing was lost.
        for call in _calls(storage, key).values():
            await call()
        assert await storage.read_range(key("kept"), 0, 100) == b"kept bytes"
    finally:
        await storage.close()


@pytest.fixture
def hung_endpoint() -> Iterator[str]:
    """A port that accepts connections (into the kernel backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.slow
async def test_a_hung_store_raises_storage_unavailable_within_the_timeout(
    hung_endpoint: str, key: Key
) -> None:
    storage = S3Storage.from_url(
        f"s3://bucket?endpoint={hung_endpoint}&access_key=k&secret_key=s",
        timeout_seconds=HUNG_TIMEOUT,
    )
    try:
        await _assert_all_unavailable(storage, key)
    finally:
        await storage.close()


# --- buckets and configuration ----------------------------------------------------------


async def test_ensure_bucket_creates_a_missing_bucket(seaweedfs: SeaweedFS) -> None:
    url = seaweedfs.storage_url.replace(
        f"s3://{seaweedfs.bucket}?", f"s3://pw-{uuid.uuid4().hex[:12]}?"
    )
    storage = S3Storage.from_url(url, timeout_seconds=10)
    try:
        with pytest.raises(StorageUnavailable):
            await storage.check()

        await storage.ensure_bucket()
        await storage.ensure_bucket()  # idempotent

        await storage.check()
        await storage.put("k", b"v", "text/plain")
        assert await storage.read_range("k", 0, 1) == b"v"
    finally:
        await storage.close()


def test_storage_url_selects_s3_with_its_parameters() -> None:
    storage = storage_from_url(
        "s3://assets?endpoint=http://127.0.0.1:9000&region=eu-west-1&access_key=a&secret_key=b",
        secret=b"unused",
        base_url="http://unused",
        timeout_seconds=3,
    )

    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.endpoint_url, storage.region, storage.timeout_seconds) == (
        "assets",
        "http://127.0.0.1:9000",
        "eu-west-1",
        3,
    )


@pytest.mark.parametrize(
    "url",
    [
        "s3://",  # no bucket
        "s3://bucket/path?endpoint=http://x",  # buckets have no path
        "s3://bucket?endpoint=http://x&acces_key=typo",  # unknown parameter
    ],
)
def test_malformed_s3_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        S3Storage.from_url(url)


async def test_unfinished_multipart_uploads_past_the_first_listing_page_are_reaped(
    s3_storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 answers ListMultipartUploads 1,000 uploads a page (SeaweedFS all at once unless
    asked for fewer): the sweeper reads every page, here of 40."""
    monkeypatch.setattr(s3_module, "_REAP_PAGE", 40)
    client = await s3_storage._get_client()
    prefix = f"orgs/{uuid.uuid4().hex}"

    async def start(i: int) -> str:
        begun = await client.create_multipart_upload(Bucket=s3_storage.bucket, Key=f"{prefix}/{i}")
        return begun["UploadId"]

    started: list[str] = []
    for first in range(0, 250, 50):
        started += await asyncio.gather(*(start(i) for i in range(first, first + 50)))
    cutoff = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert await s3_storage.reap_temp_files(cutoff) >= len(started)
    listed = await client.list_multipart_uploads(Bucket=s3_storage.bucket, Prefix=prefix)
    assert listed.get("Uploads", []) == []
