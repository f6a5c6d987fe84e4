"""The sweeper removes what nothing live needs, and nothing else."""

from __future__ import annotations

import datetime as dt

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
