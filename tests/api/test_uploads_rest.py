"""presign → PUT → finalize through /api/v1, with real bytes, and every way it can go wrong."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from pixelwand.storage.base import staging_key
from tests.conftest import BUSINESS_QUOTA
from tests.helpers import make_image, make_mp4_head, presign, upload, without_facts

KEY_RE = re.compile(r"^orgs/(c[0-9a-z]{24})/\d{4}/\d{2}/[0-9a-f-]{36}-hero\.jpg$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def storage_root(app) -> Path:
    return app.state.runtime.storage.root


async def stored(app, key: str) -> bytes | None:
    """What the object store holds for `key` (None: nothing), on any backend: the pinned
    object once finalized, before that the staged one a PUT wrote."""
    storage = app.state.runtime.storage
    for where in (key, staging_key(key)):
        info = await storage.head(where)
        if info is not None:
            return await storage.read_range(where, 0, info.size)
    return None


async def test_upload_flow_end_to_end(tenant, app):
    data = make_image(320, 200)
    r = await presign(tenant, "hero.jpg", "image/jpeg", len(data))
    assert r.status_code == 200
    ticket = r.json()
    assert set(ticket) == {"uploadUrl", "method", "headers", "storageKey", "expiresAt"}
    assert ticket["method"] == "PUT"
    assert ticket["headers"] == {"Content-Type": "image/jpeg"}
    m = KEY_RE.match(ticket["storageKey"])
    assert m and m.group(1) == tenant.org_id
    assert TS_RE.match(ticket["expiresAt"])

    put = await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert put.status_code == 200
    assert await stored(app, ticket["storageKey"]) == data

    r = await tenant.post(
        "/api/v1/assets",
        json={
            "mode": "finalize",
            "originalName": "hero.jpg",
            "mimeType": "image/jpeg",
            "size": len(data),
            "storageKey": ticket["storageKey"],
            "tags": [" hero ", "2024", "hero", ""],
        },
    )
    assert r.status_code == 201
    asset = r.json()
    expected = {
        "name": "hero.jpg",
        "originalName": "hero.jpg",
        "size": len(data),
        "mimeType": "image/jpeg",
        "mediaType": "IMAGE",
        "storageKey": ticket["storageKey"],
        "tags": ["hero", "2024"],
        "collectionId": None,
        "locationX": 0,
        "locationY": 0,
        "width": 320,
        "height": 200,
    }
    assert {k: asset[k] for k in expected} == expected
    assert re.match(r"^c[0-9a-z]{24}$", asset["id"])
    assert TS_RE.match(asset["uploadedAt"])

    r = await tenant.get(f"/api/v1/assets/{asset['id']}")
    assert r.status_code == 200 and without_facts(r.json()) == without_facts(asset)


async def test_finalize_twice_returns_the_same_asset(tenant):
    data = make_image()
    asset = await upload(tenant, data)
    body = {
        "mode": "finalize",
        "originalName": "hero.jpg",
        "mimeType": "image/jpeg",
        "size": len(data),
        "storageKey": asset["storageKey"],
    }
    again = await tenant.post("/api/v1/assets", json=body)
    assert again.status_code == 200
    assert without_facts(again.json()) == without_facts(asset)
    listing = (await tenant.get("/api/v1/assets")).json()
    assert listing["total"] == 1


async def test_concurrent_finalizes_make_one_asset(tenant):
    data = make_image()
    ticket = (await presign(tenant, "hero.jpg", "image/jpeg", len(data))).json()
    await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    body = {
        "mode": "finalize",
        "originalName": "hero.jpg",
        "mimeType": "image/jpeg",
        "size": len(data),
        "storageKey": ticket["storageKey"],
    }
    answers = await asyncio.gather(*(tenant.post("/api/v1/assets", json=body) for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert (await tenant.get("/api/v1/assets")).json()["total"] == 1


async def test_finalize_with_name_collection_and_video(tenant):
    col = (await tenant.post("/api/v1/collections", json={"name": "Clips"})).json()
    data = make_mp4_head()
    asset = await upload(
        tenant, data, "clip.mp4", "video/mp4", name="Launch clip", collectionId=col["id"]
    )
    assert asset["mediaType"] == "VIDEO"
    assert asset["name"] == "Launch clip" and asset["originalName"] == "clip.mp4"
    assert asset["collectionId"] == col["id"]
    assert asset["width"] is None and asset["height"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"originalName": "a.jpg", "mimeType": "image/jpeg", "size": 10}, "mode"),
        ({"mode": "upload"}, "mode"),
        ({"mode": "presign", "mimeType": "image/jpeg", "size": 10}, "originalName"),
        ({"mode": "presign", "originalName": "a.jpg", "size": 10}, "mimeType"),
        ({"mode": "presign", "originalName": "a.jpg", "mimeType": "image/jpeg"}, "size"),
        ({"mode": "presign", "originalName": "a", "mimeType": "image/bmp", "size": 1}, "bmp"),
        ({"mode": "presign", "originalName": "a", "mimeType": "image/heic", "size": 1}, "HEVC"),
        ({"mode": "presign", "originalName": "a", "mimeType": "text/plain", "size": 1}, "text"),
        ({"mode": "presign", "originalName": "a", "mimeType": "image/png", "size": 0}, "size"),
        ({"mode": "presign", "originalName": "a", "mimeType": "image/png", "size": -5}, "size"),
        ({"mode": "presign", "originalName": "a", "mimeType": "image/png", "size": "1"}, "size"),
        ({"mode": "presign", "originalName": "a", "mimeType": "image/png", "size": 1.5}, "size"),
        (
            {"mode": "presign", "originalName": "a", "mimeType": "image/png", "size": 6 * 1024**3},
            "size",
        ),
        ({"mode": "presign", "originalName": "  ", "mimeType": "image/png", "size": 1}, "empty"),
        (
            {"mode": "presign", "originalName": "a", "mimeType": "image/png", "size": 1, "x": 1},
            "'x'",
        ),
        (
            {
                "mode": "presign",
                "originalName": "a",
                "mimeType": "image/png",
                "size": 1,
                "storageKey": "k",
            },
            "storageKey",
        ),
    ],
)
async def test_presign_rejects_bad_input(tenant, body, message):
    r = await tenant.post("/api/v1/assets", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def padded_jpeg(size: int) -> bytes:
    """A decodable JPEG of exactly `size` bytes (junk after the end marker is ignored)."""
    data = make_image()
    return data + b"\0" * (size - len(data))


async def test_presign_over_quota_is_402(make_tenant):
    t = await make_tenant(plan="BUSINESS")
    assert (await presign(t, "a.jpg", "image/jpeg", BUSINESS_QUOTA - 10_000)).status_code == 200
    r = await presign(t, "b.jpg", "image/jpeg", 10_001)
    assert r.status_code == 402
    assert "quota" in r.json()["error"]
    assert (await presign(t, "c.jpg", "image/jpeg", 10_000)).status_code == 200  # exact fit


async def test_quota_counts_live_assets_and_a_delete_frees_space_at_once(make_tenant):
    t = await make_tenant(plan="BUSINESS")
    asset = await upload(t, padded_jpeg(30_000))
    assert (await presign(t, "b.jpg", "image/jpeg", 30_000)).status_code == 402
    assert (await t.delete(f"/api/v1/assets/{asset['id']}")).status_code == 200
    assert (await presign(t, "b.jpg", "image/jpeg", 30_000)).status_code == 200


async def test_quota_is_checked_again_at_finalize(make_tenant):
    from pixelwand.models import Upload

    t = await make_tenant(plan="BUSINESS")
    data = padded_jpeg(30_000)
    first = (await presign(t, "a.jpg", "image/jpeg", len(data))).json()
    await t.http.put(first["uploadUrl"], content=data, headers=first["headers"])
    # 16 minutes later the reservation has lapsed, and another upload takes the space.
    await Upload.filter(storage_key=first["storageKey"]).update(
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)
    )
    other = await upload(t, data)
    r = await t.post("/api/v1/assets", json=_finalize_body(first, data))
    assert r.status_code == 402
    assert "quota" in r.json()["error"]
    # Space freed: the same upload finalizes now, with the bytes that were pinned before
    # the 402 (the local store's staged file was moved by that first attempt).
    assert (await t.delete(f"/api/v1/assets/{other['id']}")).status_code == 200
    r = await t.post("/api/v1/assets", json=_finalize_body(first, data))
    assert r.status_code == 201, r.text
    assert r.json()["size"] == len(data)


async def _presigned_put(tenant, data: bytes, mime: str = "image/jpeg") -> dict:
    r = await presign(tenant, "hero.jpg", mime, len(data))
    assert r.status_code == 200
    return r.json()


async def test_put_with_wrong_content_type_is_refused_and_leaves_nothing(tenant, app, backend):
    data = make_image()
    ticket = await _presigned_put(tenant, data)
    r = await tenant.http.put(
        ticket["uploadUrl"], content=data, headers={"Content-Type": "image/png"}
    )
    if backend.is_local:
        assert r.status_code == 400
        assert "Content-Type" in r.json()["error"]
        assert not list((storage_root(app) / ".tmp").iterdir())
    else:  # the declared Content-Type is part of the S3 signature
        assert r.status_code == 403
    assert await stored(app, ticket["storageKey"]) is None


@pytest.mark.backends("sqlite-local")
async def test_put_with_bigger_body_is_refused_and_leaves_nothing(tenant, app):
    data = make_image()
    ticket = await _presigned_put(tenant, data)

    async def body():
        yield data
        yield b"extra bytes"

    r = await tenant.http.put(ticket["uploadUrl"], content=body(), headers=ticket["headers"])
    assert r.status_code == 400
    assert "larger" in r.json()["error"]
    assert await stored(app, ticket["storageKey"]) is None
    assert not list((storage_root(app) / ".tmp").iterdir())


@pytest.mark.backends("sqlite-local")
async def test_put_with_declared_length_mismatch_is_refused(tenant, app):
    data = make_image()
    ticket = await _presigned_put(tenant, data)
    r = await tenant.http.put(ticket["uploadUrl"], content=data[:-10], headers=ticket["headers"])
    assert r.status_code == 400
    assert await stored(app, ticket["storageKey"]) is None


@pytest.mark.parametrize("delta", [+11, -10])
async def test_a_body_of_another_size_never_becomes_an_asset(tenant, app, delta):
    """S3 cannot bound a presigned PUT's size; finalize catches it (local refuses at PUT)."""
    data = make_image()
    ticket = await _presigned_put(tenant, data)
    body = data + b"x" * delta if delta > 0 else data[:delta]
    await tenant.http.put(ticket["uploadUrl"], content=body, headers=ticket["headers"])
    r = await tenant.post("/api/v1/assets", json=_finalize_body(ticket, data))
    assert r.status_code == 400
    assert (await tenant.get("/api/v1/assets")).json()["total"] == 0


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.backends("sqlite-local")
@pytest.mark.parametrize(
    "tamper",
    [
        {"sig": "0" * 64},
        {"size": "999999"},
        {"ct": "image/png"},
        {"exp": "1"},  # expired (and no longer matching)
    ],
)
async def test_put_with_tampered_or_expired_url_is_refused(tenant, app, tamper):
    data = make_image()
    ticket = await _presigned_put(tenant, data)
    url = _with_query(ticket["uploadUrl"], **tamper)
    headers = {"Content-Type": tamper.get("ct", "image/jpeg")}
    r = await tenant.http.put(url, content=data, headers=headers)
    assert r.status_code == 403
    assert await stored(app, ticket["storageKey"]) is None


@pytest.mark.backends("sqlite-local")
async def test_put_to_another_key_with_a_valid_signature_is_refused(tenant, app):
    data = make_image()
    ticket = await _presigned_put(tenant, data)
    other_key = ticket["storageKey"].replace("hero.jpg", "evil.jpg")
    url = ticket["uploadUrl"].replace("hero.jpg", "evil.jpg")
    r = await tenant.http.put(url, content=data, headers=ticket["headers"])
    assert r.status_code == 403
    assert await stored(app, other_key) is None


@pytest.mark.backends("sqlite-local")
async def test_expired_upload_url_is_refused(tenant, app, monkeypatch):
    import time

    data = make_image()
    ticket = await _presigned_put(tenant, data)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 16 * 60)
    r = await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert r.status_code == 403
    assert "expired" in r.json()["error"]


def _finalize_body(ticket: dict, data: bytes, **over) -> dict:
    return {
        "mode": "finalize",
        "originalName": "hero.jpg",
        "mimeType": "image/jpeg",
        "size": len(data),
        "storageKey": ticket["storageKey"],
        **over,
    }


async def test_finalize_before_upload_is_400(tenant):
    data = make_image()
    ticket = await _presigned_put(tenant, data)
    r = await tenant.post("/api/v1/assets", json=_finalize_body(ticket, data))
    assert r.status_code == 400
    assert "upload not found" in r.json()["error"]


async def test_finalize_of_a_key_never_presigned_is_400(tenant):
    key = f"orgs/{tenant.org_id}/2026/04/00000000-0000-0000-0000-000000000000-hero.jpg"
    r = await tenant.post(
        "/api/v1/assets",
        json={
            "mode": "finalize",
            "originalName": "hero.jpg",
            "mimeType": "image/jpeg",
            "size": 10,
            "storageKey": key,
        },
    )
    assert r.status_code == 400
    assert "upload not found" in r.json()["error"]


async def test_finalize_of_another_orgs_key_is_403(make_tenant):
    a = await make_tenant()
    b = await make_tenant()
    asset = await upload(a, make_image())
    r = await b.post(
        "/api/v1/assets",
        json={
            "mode": "finalize",
            "originalName": "hero.jpg",
            "mimeType": "image/jpeg",
            "size": asset["size"],
            "storageKey": asset["storageKey"],
        },
    )
    assert r.status_code == 403
    assert "another organization" in r.json()["error"]


async def test_finalize_with_wrong_size_is_400(tenant):
    data = make_image()
    ticket = await _presigned_put(tenant, data)
    await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    r = await tenant.post("/api/v1/assets", json=_finalize_body(ticket, data, size=len(data) + 1))
    assert r.status_code == 400
    assert "bytes" in r.json()["error"]


async def test_finalize_with_other_mime_than_presigned_is_400(tenant):
    data = make_image()
    ticket = await _presigned_put(tenant, data)
    await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    r = await tenant.post("/api/v1/assets", json=_finalize_body(ticket, data, mimeType="image/png"))
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("mime", "data"),
    [
        ("image/jpeg", make_image(fmt=".png")),  # PNG bytes declared as JPEG
        ("image/png", b"GIF89a" + b"\x00" * 100),
        ("video/mp4", b"\x00" * 200),
        ("image/webp", b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 50),
    ],
)
async def test_finalize_with_bytes_not_matching_mime_is_400(tenant, mime, data):
    r = await presign(tenant, "file.bin", mime, len(data))
    ticket = r.json()
    put = await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert put.status_code == 200
    r = await tenant.post(
        "/api/v1/assets",
        json={
            "mode": "finalize",
            "originalName": "file.bin",
            "mimeType": mime,
            "size": len(data),
            "storageKey": ticket["storageKey"],
        },
    )
    assert r.status_code == 400
    assert "does not match" in r.json()["error"]


async def test_finalize_of_undecodable_image_is_400(tenant):
    data = b"\xff\xd8\xff\xe0" + b"garbage" * 50  # JPEG magic, no image behind it
    r = await presign(tenant, "bad.jpg", "image/jpeg", len(data))
    ticket = r.json()
    await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    r = await tenant.post(
        "/api/v1/assets",
        json={
            "mode": "finalize",
            "originalName": "bad.jpg",
            "mimeType": "image/jpeg",
            "size": len(data),
            "storageKey": ticket["storageKey"],
        },
    )
    assert r.status_code == 400
    assert "could not decode image" in r.json()["error"]
    assert (await tenant.get("/api/v1/assets")).json()["total"] == 0


async def test_finalize_with_unknown_collection_is_404_and_other_orgs_is_403(make_tenant):
    a = await make_tenant()
    b = await make_tenant()
    col_b = (await b.post("/api/v1/collections", json={"name": "B"})).json()
    data = make_image()
    ticket = await _presigned_put(a, data)
    await a.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    r = await a.post(
        "/api/v1/assets", json=_finalize_body(ticket, data, collectionId="c" + "1" * 24)
    )
    assert r.status_code == 404
    r = await a.post("/api/v1/assets", json=_finalize_body(ticket, data, collectionId=col_b["id"]))
    assert r.status_code == 403
    r = await a.post("/api/v1/assets", json=_finalize_body(ticket, data))
    assert r.status_code == 201


async def test_finalize_rejects_too_many_tags(tenant):
    data = make_image()
    ticket = await _presigned_put(tenant, data)
    await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    r = await tenant.post(
        "/api/v1/assets", json=_finalize_body(ticket, data, tags=[f"t{i}" for i in range(51)])
    )
    assert r.status_code == 400
    r = await tenant.post("/api/v1/assets", json=_finalize_body(ticket, data, tags=["x" * 65]))
    assert r.status_code == 400
