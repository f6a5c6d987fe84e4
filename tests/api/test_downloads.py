"""Downloading an original: the same answers on every backend. S3 (SeaweedFS here) serves
byte ranges itself; the local store's `/files` answers them the same way (RFC 9110: one
range 206 with Content-Range, past the end 416, several or malformed ranges the whole
object), so a video player's seek or a resumed download works on the embedded default."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import make_image, upload

ORIGINAL_URL = "query($id: ID!) { asset(id: $id) { originalUrl } }"


@pytest.fixture
async def original(tenant: Any) -> tuple[str, bytes]:
    data = make_image(97, 61, ".png")
    asset = await upload(tenant, data, "ranges.png", "image/png")
    body = await tenant.gql(ORIGINAL_URL, {"id": asset["id"]})
    return str(body["data"]["asset"]["originalUrl"]), data


@pytest.mark.parametrize(
    ("header", "part"),
    [
        ("bytes=0-9", slice(0, 10)),
        ("bytes=10-19", slice(10, 20)),
        ("bytes=-7", slice(-7, None)),
        ("bytes=100-", slice(100, None)),
        ("bytes=5-99999999", slice(5, None)),  # the end clipped to the object
    ],
)
async def test_one_range_is_206_with_its_bytes(
    tenant: Any, original: tuple[str, bytes], header: str, part: slice
) -> None:
    url, data = original
    r = await tenant.http.get(url, headers={"Range": header})
    assert r.status_code == 206, r.text
    assert r.content == data[part]
    first = range(len(data))[part][0]
    last = range(len(data))[part][-1]
    assert r.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
    assert int(r.headers["content-length"]) == len(data[part])


async def test_a_range_past_the_end_is_416(tenant: Any, original: tuple[str, bytes]) -> None:
    url, data = original
    r = await tenant.http.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(data)}"


async def test_a_range_of_another_unit_gets_the_whole_object(
    tenant: Any, original: tuple[str, bytes]
) -> None:
    url, data = original
    r = await tenant.http.get(url, headers={"Range": "items=0-9"})
    assert (r.status_code, r.content) == (200, data)
    plain = await tenant.http.get(url)
    assert (plain.status_code, plain.content) == (200, data)


@pytest.mark.backends("sqlite-local")
@pytest.mark.parametrize(
    "header", ["bytes=9-3", "bytes=a-b", "bytes=0-1,4-5", "bytes=\u00b2-", "bytes=-", "bytes"]
)
async def test_the_local_store_ignores_ranges_it_does_not_serve(
    tenant: Any, original: tuple[str, bytes], header: str
) -> None:
    """Malformed or several ranges: the whole object (RFC 9110 lets a server ignore a Range;
    S3 vendors differ here, SeaweedFS answering 416 or multipart/byteranges)."""
    url, data = original
    r = await tenant.http.get(url, headers={"Range": header.encode("latin-1")})
    assert (r.status_code, r.content) == (200, data), header


@pytest.mark.backends("sqlite-local")
async def test_a_stale_if_range_gets_the_whole_object(
    tenant: Any, original: tuple[str, bytes]
) -> None:
    url, data = original
    etag = (await tenant.http.get(url)).headers["etag"]
    fresh = await tenant.http.get(url, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert (fresh.status_code, fresh.content) == (206, data[:4])
    stale = await tenant.http.get(url, headers={"Range": "bytes=0-3", "If-Range": '"old"'})
    assert (stale.status_code, stale.content) == (200, data)
