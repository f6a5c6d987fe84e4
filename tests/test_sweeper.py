"""The sweeper removes what nothing live needs, and nothing else."""

from __future__ import annotations

import datetime as dt
import uuid

from pixelwand.models import Asset, Upload
from pixelwand.services.sweeper import sweep
from pixelwand.storage.base import staging_key
from tests.helpers import make_image, presign, upload


async def _sweep(app):
    runtime = app.state.runtime
    return await sweep(
        runtime.storage, upload_retention_seconds=runtime.settings.upload_retention_seconds
    )


async def test_deleted_asset_objects_are_removed_and_live_ones_kept(tenant, app):
    storage = app.state.runtime.storage
    keep = await upload(tenant, make_image(), "keep.jpg")
    gone = await upload(tenant, make_image(), "gone.jpg")
    assert (await tenant.delete(f"/api/v1/assets/{gone['id']}")).status_code == 200
    assert await storage.head(gone["storageKey"]) is not None  # not yet: the sweeper does it
    report = await _sweep(app)
    assert report.assets_removed >= 1
    assert await storage.head(gone["storageKey"]) is None
    assert not await Asset.filter(id=gone["id"]).exists()
    assert await storage.head(keep["storageKey"]) is not None
    assert (await tenant.get(f"/api/v1/assets/{keep['id']}")).status_code == 200


async def test_stale_uploads_are_removed_after_retention(tenant, app):
    storage = app.state.runtime.storage
    data = make_image()
    stale = (await presign(tenant, "stale.jpg", "image/jpeg", len(data))).json()
    await tenant.http.put(stale["uploadUrl"], content=data, headers=stale["headers"])
    fresh = (await presign(tenant, "fresh.jpg", "image/jpeg", len(data))).json()
    await tenant.http.put(fresh["uploadUrl"], content=data, headers=fresh["headers"])
    await Upload.filter(storage_key=stale["storageKey"]).update(
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
    )
    await _sweep(app)
    assert await storage.head(staging_key(stale["storageKey"])) is None
    assert await storage.head(staging_key(fresh["storageKey"])) is not None
    # The swept upload can no longer be finalized; the fresh one can.
    body = {
        "mode": "finalize",
        "originalName": "x.jpg",
        "mimeType": "image/jpeg",
        "size": len(data),
    }
    r = await tenant.post("/api/v1/assets", json={**body, "storageKey": stale["storageKey"]})
    assert r.status_code == 400
    r = await tenant.post("/api/v1/assets", json={**body, "storageKey": fresh["storageKey"]})
    assert r.status_code == 201


async def test_finalized_uploads_are_never_swept(tenant, app):
    storage = app.state.runtime.storage
    asset = await upload(tenant, make_image())
    await Upload.filter(storage_key=asset["storageKey"]).update(
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    )
    await _sweep(app)
    assert await storage.head(asset["storageKey"]) is not None
    assert (await tenant.get(f"/api/v1/assets/{asset['id']}")).status_code == 200


async def test_only_one_sweeper_at_a_time(app):
    from pixelwand.models import SweepLock

    await SweepLock.create(
        name="sweep", holder="other", expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    )
    try:
        assert (await _sweep(app)).skipped_locked
    finally:
        await SweepLock.filter(name="sweep").delete()
    assert not (await _sweep(app)).skipped_locked


async def test_a_sweep_keeps_every_object_of_live_assets(tenant, app):
    """The mutation that survived the suite: a sweeper deleting live assets' renditions.
    After a sweep (with every expiry long past), a live asset's export URL still says
    `cached` and its GET answers the rendition; its original is still served."""
    live = await upload(tenant, make_image(80, 60), "live.jpg")
    gone = await upload(tenant, make_image(80, 60), "gone.jpg")
    export = f"/api/v1/assets/{live['id']}/export-url"
    first = (await tenant.get(export, params={"format": "webp", "maxWidth": 40})).json()
    assert first["cached"] is False
    r = await tenant.get(f"/api/v1/assets/{gone['id']}/export-url", params={"format": "png"})
    gone_rendition = r.json()["url"]
    assert (await tenant.http.get(gone_rendition)).status_code == 200
    assert (await tenant.delete(f"/api/v1/assets/{gone['id']}")).status_code == 200

    storage = app.state.runtime.storage
    await sweep(
        storage, upload_retention_seconds=0, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    )

    again = (await tenant.get(export, params={"format": "webp", "maxWidth": 40})).json()
    assert again["cached"] is True
    got = await tenant.http.get(again["url"])
    assert got.status_code == 200 and got.content[8:12] == b"WEBP"
    original = await tenant.gql(
        "query($id: ID!) { asset(id: $id) { originalUrl } }", {"id": live["id"]}
    )
    got = await tenant.http.get(original["data"]["asset"]["originalUrl"])
    assert got.status_code == 200 and got.content[:2] == b"\xff\xd8"
    # The deleted asset's original and rendition are gone from the store.
    assert await storage.head(gone["storageKey"]) is None
    assert (await tenant.http.get(gone_rendition)).status_code in (403, 404)
    rendition_keys = [
        k async for k in _keys_under(storage, f"renditions/{tenant.org_id}/{gone['id']}/")
    ]
    assert rendition_keys == []


async def _keys_under(storage, prefix: str):
    """Object keys under `prefix`, on either backend (test-side listing)."""
    from pixelwand.storage.local import LocalStorage

    if isinstance(storage, LocalStorage):
        for path in (storage.root / prefix).rglob("*"):
            if path.is_file():
                yield path.relative_to(storage.root).as_posix()
        return
    client = await storage._get_client()
    page = await client.list_objects_v2(Bucket=storage.bucket, Prefix=prefix)
    for item in page.get("Contents", []):
        yield item["Key"]


async def test_old_temp_files_and_unfinished_copies_are_reaped(app, backend, tmp_path, monkeypatch):
    import os
    import tempfile
    import time

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old, young = tmp_path / "pixelwand-old.jpg", tmp_path / "pixelwand-young.jpg"
    for path in (old, young):
        path.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    storage = app.state.runtime.storage
    await storage.reap_temp_files(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert not old.exists() and young.exists()
    if backend.is_local:
        return
    # S3: a multipart copy that a killed process never completed holds parts in the store.
    client = await storage._get_client()
    key = f"orgs/{uuid.uuid4().hex}/big.mp4"
    started = await client.create_multipart_upload(Bucket=storage.bucket, Key=key)
    await storage.reap_temp_files(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    listed = await client.list_multipart_uploads(Bucket=storage.bucket)
    assert started["UploadId"] not in [u["UploadId"] for u in listed.get("Uploads", [])]


async def test_settled_webhook_deliveries_go_after_their_retention(tenant, app):
    """The outbox does not grow for ever: deliveries settled (succeeded, failed, skipped)
    more than DELIVERY_RETENTION_DAYS ago are removed; pending ones, and recent ones, stay."""
    from pixelwand.models import WebhookDelivery, WebhookEndpoint
    from pixelwand.services.sweeper import DELIVERY_RETENTION_DAYS

    endpoint = await WebhookEndpoint.create(
        organization_id=tenant.org_id,
        url="http://example.com/hook",
        events=["asset.deleted"],
        secret="whsec_x",
        enabled=False,
        created_at=dt.datetime.now(dt.UTC),
        updated_at=dt.datetime.now(dt.UTC),
    )
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=DELIVERY_RETENTION_DAYS, hours=1)
    recent = now - dt.timedelta(days=DELIVERY_RETENTION_DAYS - 1)
    rows = {}
    for name, status, created in [
        ("old-succeeded", "succeeded", old),
        ("old-failed", "failed", old),
        ("old-skipped", "skipped", old),
        ("old-pending", "pending", old),
        ("recent-succeeded", "succeeded", recent),
    ]:
        row = await WebhookDelivery.create(
            organization_id=tenant.org_id,
            endpoint_id=endpoint.id,
            event_id=f"evt_{name}",
            event_type="asset.deleted",
            body="{}",
            status=status,
            next_attempt_at=now + dt.timedelta(days=1),
            created_at=created,
        )
        rows[name] = row.id
    report = await _sweep(app)
    left = set(
        await WebhookDelivery.filter(endpoint_id=endpoint.id).values_list("event_id", flat=True)
    )
    assert left == {"evt_old-pending", "evt_recent-succeeded"}
    assert report.deliveries_removed >= 3
