"""Final means final: once finalized, the bytes an asset serves never change, on every backend.

The attack of issue 11: the upload URL stays valid for its 15 minutes after finalize, and a
second PUT of the same size (the local store checks it, S3 signs it) used to replace the
original with `<html><script>…`, which `originalUrl` then served as image/jpeg. Here the
same PUT either is refused (local: 409) or lands where no asset reads (S3: a presigned PUT
cannot be revoked), and what `originalUrl` and export renditions serve stays the checked
bytes. The sweeper removes the client-writable object once its URL has expired.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from pixelwand.services.sweeper import sweep
from pixelwand.storage.base import staging_key
from tests.helpers import make_image, make_mp4_head, presign, without_facts

ORIGINAL_URL = "query($id: ID!) { asset(id: $id) { originalUrl } }"


def hostile(size: int) -> bytes:
    """HTML of exactly `size` bytes: what a browser would run if it sniffed it."""
    page = b"<html><script>alert(document.domain)</script></html>"
    return (page + b" " * size)[:size]


async def presign_and_put(tenant, data: bytes, name: str, mime: str) -> dict[str, Any]:
    r = await presign(tenant, name, mime, len(data))
    assert r.status_code == 200, r.text
    ticket = r.json()
    put = await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert put.status_code == 200, put.text
    return ticket


def finalize_body(ticket: dict[str, Any], data: bytes, name: str, mime: str) -> dict[str, Any]:
    return {
        "mode": "finalize",
        "originalName": name,
        "mimeType": mime,
        "size": len(data),
        "storageKey": ticket["storageKey"],
    }


async def original_url(tenant, asset_id: str) -> str:
    body = await tenant.gql(ORIGINAL_URL, {"id": asset_id})
    assert "errors" not in body, body
    return str(body["data"]["asset"]["originalUrl"])


async def second_put(tenant, ticket: dict[str, Any], body: bytes, backend) -> None:
    """The attacker's PUT to the still-valid URL: 409 on the local store; S3 cannot refuse
    a presigned PUT, and accepts it into the staged object."""
    r = await tenant.http.put(ticket["uploadUrl"], content=body, headers=ticket["headers"])
    if backend.is_local:
        assert r.status_code == 409, r.text
        assert r.json() == {
            "error": "this upload is finalized: its bytes can no longer be replaced"
        }
    else:
        assert r.status_code == 200, r.text


async def test_a_put_after_finalize_never_changes_what_the_asset_serves(tenant, app, backend):
    data = make_image(120, 80)
    ticket = await presign_and_put(tenant, data, "hero.jpg", "image/jpeg")
    r = await tenant.post(
        "/api/v1/assets", json=finalize_body(ticket, data, "hero.jpg", "image/jpeg")
    )
    assert r.status_code == 201, r.text
    asset = r.json()
    assert asset["storageKey"] == ticket["storageKey"]  # answers keep the presigned key

    await second_put(tenant, ticket, hostile(len(data)), backend)

    # originalUrl serves the checked bytes, typed as checked, never to be sniffed.
    got = await tenant.http.get(await original_url(tenant, asset["id"]))
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-disposition"].startswith("inline;")
    if backend.is_local:  # the app serves it (S3 answers the signed GET itself)
        assert got.headers["x-content-type-options"] == "nosniff"

    # A rendition made after the PUT is made from the same bytes (the HTML would not decode).
    r = await tenant.get(f"/api/v1/assets/{asset['id']}/export-url", params={"format": "png"})
    assert r.status_code == 200, r.text
    rendition = await tenant.http.get(r.json()["url"])
    assert rendition.status_code == 200 and rendition.content[:4] == b"\x89PNG"

    # Finalizing again still answers the same asset, unchanged.
    again = await tenant.post(
        "/api/v1/assets", json=finalize_body(ticket, data, "hero.jpg", "image/jpeg")
    )
    assert again.status_code == 200
    assert without_facts(again.json()) == without_facts(asset)  # facts may arrive meanwhile

    # Once the URL has expired, the sweeper removes the client-writable object; the asset
    # keeps serving its bytes.
    storage = app.state.runtime.storage
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
    await sweep(storage, upload_retention_seconds=86400, now=later)
    assert await storage.head(staging_key(ticket["storageKey"])) is None
    got = await tenant.http.get(await original_url(tenant, asset["id"]))
    assert got.status_code == 200 and got.content == data


async def test_videos_are_downloads_and_keep_their_bytes(tenant, backend):
    data = make_mp4_head(8192)
    ticket = await presign_and_put(tenant, data, "clip.mp4", "video/mp4")
    r = await tenant.post(
        "/api/v1/assets", json=finalize_body(ticket, data, "clip.mp4", "video/mp4")
    )
    assert r.status_code == 201, r.text
    await second_put(tenant, ticket, hostile(len(data)), backend)
    got = await tenant.http.get(await original_url(tenant, r.json()["id"]))
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "video/mp4"
    assert got.headers["content-disposition"].startswith("attachment;")


def padded(image: bytes, size: int) -> bytes:
    """A JPEG followed by zeros up to `size` bytes: still the same image to a decoder."""
    assert len(image) <= size
    return image + b"\0" * (size - len(image))


async def test_concurrent_finalizes_and_puts_of_one_key_make_one_asset_of_checked_bytes(
    tenant, backend
):
    """Five finalizes of one key at once while the client PUTs another image of the same
    size: one asset, the same in every answer, whose bytes are the ones its width and
    height were read from; later PUTs change nothing."""
    wide, tall = make_image(90, 60), make_image(60, 90)
    size = max(len(wide), len(tall)) + 16
    first, other = padded(wide, size), padded(tall, size)
    ticket = await presign_and_put(tenant, first, "race.jpg", "image/jpeg")
    body = finalize_body(ticket, first, "race.jpg", "image/jpeg")

    async def put(data: bytes) -> int:
        r = await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
        return r.status_code

    results = await asyncio.gather(
        *(tenant.post("/api/v1/assets", json=body) for _ in range(5)), put(other), put(first)
    )
    finalizes = results[:5]
    assert sorted(r.status_code for r in finalizes) == [200, 200, 200, 200, 201], [
        r.text for r in finalizes
    ]
    assets = [r.json() for r in finalizes]
    # The facts worker may fill in facts between two reads.
    assert all(without_facts(a) == without_facts(assets[0]) for a in assets)
    asset = assets[0]
    assert (await tenant.get("/api/v1/assets")).json()["total"] == 1

    async def served() -> bytes:
        got = await tenant.http.get(await original_url(tenant, asset["id"]))
        assert got.status_code == 200
        return got.content

    content = await served()
    assert content in (first, other)
    assert (asset["width"], asset["height"]) == ((90, 60) if content == first else (60, 90))
    # After finalize: the local store refuses every PUT; S3 accepts it into the staged
    # object, which no asset reads.
    for data in (first, other):
        assert await put(data) == (409 if backend.is_local else 200)
    assert await served() == content


async def test_finalize_refuses_another_mime_type_than_the_presigned_one(tenant):
    data = make_image(40, 30, ".png")
    ticket = await presign_and_put(tenant, data, "logo.png", "image/png")
    r = await tenant.post(
        "/api/v1/assets", json=finalize_body(ticket, data, "logo.png", "image/jpeg")
    )
    assert r.status_code == 400
    assert r.json() == {"error": "mimeType must be image/png, as declared at presign"}
    assert (await tenant.get("/api/v1/assets")).json()["total"] == 0
    r = await tenant.post(
        "/api/v1/assets", json=finalize_body(ticket, data, "logo.png", "image/png")
    )
    assert r.status_code == 201, r.text


@pytest.mark.backends("sqlite-local")
async def test_every_app_answer_carries_nosniff(tenant, http):
    for r in (
        await http.get("/healthz"),
        await tenant.get("/api/v1/assets"),
        await tenant.get("/api/v1/assets/nope"),
        await tenant.post("/graphql", json={"query": "{ viewer { plan } }"}),
        await http.get("/files/orgs/x?sig=bad&exp=1"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff", r.url


async def test_a_finalize_killed_mid_way_holds_up_the_next_one_only_until_its_lease_lapses(
    tenant,
):
    """A process killed while it pinned left its lease; the lease lapses (it is renewed
    only while its holder works) and the next finalize proceeds."""
    from pixelwand.models import Upload

    data = make_image(50, 40)
    ticket = await presign_and_put(tenant, data, "crash.jpg", "image/jpeg")
    await Upload.filter(storage_key=ticket["storageKey"]).update(
        finalizing_by="killed", finalizing_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    )
    r = await tenant.post(
        "/api/v1/assets", json=finalize_body(ticket, data, "crash.jpg", "image/jpeg")
    )
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (50, 40)
