"""The sweeper: removes what nothing live needs any more.

- deleted assets: their original object, their renditions' objects, then the rows;
- uploads presigned but never finalized within the retention period (24 h): the object
  (if the client stored one) and the row;
- multipart uploads never completed within the retention period: aborted in the store
  (their parts) and the row deleted, which frees their quota reservation;
- staged upload objects (what a presigned PUT writes) once their URL has expired and their
  upload is finalized or gone: a PUT after finalize cannot change the asset, but must not
  keep bytes in the store either;
- temporary files older than the upload retention (`.part` files of interrupted local
  uploads, local copies of S3 objects, unfinished multipart copies), left by a process
  killed mid-way;
- batch-export records whose links have expired;
- webhook deliveries settled (succeeded, failed, skipped) more than
  DELIVERY_RETENTION_DAYS ago: each holds its event's body, one row per endpoint and event.

It never touches the objects of live assets: originals and renditions are removed only
after their asset is deleted.

Only one process sweeps at a time: a lease row in `sweep_locks`, taken with a conditional
update, so several app processes never work on the same objects concurrently. A row is
deleted from the database before its object leaves storage only where a concurrent finalize
could otherwise claim it (uploads); assets are already invisible once deleted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from pixelwand import metrics
from pixelwand.models import (
    Asset,
    ExportJob,
    MultipartUpload,
    Rendition,
    SweepLock,
    Upload,
    WebhookDelivery,
)
from pixelwand.services.multipart import remove_aborted
from pixelwand.services.uploads import PRESIGN_SECONDS
from pixelwand.storage import Storage
from pixelwand.storage.base import staging_key

log = logging.getLogger(__name__)

BATCH = 500
LEASE_SECONDS = 300
# How long a settled webhook delivery stays visible (GET .../deliveries shows the latest 50).
DELIVERY_RETENTION_DAYS = 30


@dataclasses.dataclass
class SweepReport:
    assets_removed: int = 0
    uploads_removed: int = 0
    multipart_aborted: int = 0
    staged_removed: int = 0
    temp_files_removed: int = 0
    objects_deleted: int = 0
    deliveries_removed: int = 0
    skipped_locked: bool = False


async def _acquire(holder: str, now: dt.datetime) -> bool:
    expires = now + dt.timedelta(seconds=LEASE_SECONDS)
    taken = await SweepLock.filter(name="sweep", expires_at__lt=now).update(
        holder=holder, expires_at=expires
    )
    if taken:
        return True
    try:
        await SweepLock.create(name="sweep", holder=holder, expires_at=expires)
        return True
    except IntegrityError:
        return False


async def _renew(holder: str) -> bool:
    """Extend our lease before each batch; False once another process has taken it over.

    A sweep longer than one lease (a huge backlog, a slow store) keeps its lease, and one
    whose lease expired anyway (the process stalled) stops instead of working beside the
    process that took over.
    """
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LEASE_SECONDS)
    return bool(await SweepLock.filter(name="sweep", holder=holder).update(expires_at=expires))


async def _release(holder: str) -> None:
    await SweepLock.filter(name="sweep", holder=holder).delete()


async def sweep(
    storage: Storage, *, upload_retention_seconds: float, now: dt.datetime | None = None
) -> SweepReport:
    """One round; `now` (default: the clock) is when expiries are judged from."""
    report = SweepReport()
    holder = uuid.uuid4().hex
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(seconds=upload_retention_seconds)
    if not await _acquire(holder, now):
        report.skipped_locked = True
        # Temporary files are this host's own: reaped whoever holds the lease.
        report.temp_files_removed = await storage.reap_temp_files(cutoff)
        return report
    try:
        await _sweep_deleted_assets(storage, holder, report)
        await _sweep_stale_uploads(storage, holder, cutoff, report)
        await _sweep_stale_multipart(storage, holder, cutoff, report)
        await _sweep_staged(storage, holder, now, report)
        await ExportJob.filter(expires_at__lt=now).delete()
        report.deliveries_removed = await WebhookDelivery.filter(
            status__in=("succeeded", "failed", "skipped"),
            created_at__lt=now - dt.timedelta(days=DELIVERY_RETENTION_DAYS),
        ).delete()
    finally:
        await _release(holder)
    report.temp_files_removed = await storage.reap_temp_files(cutoff)
    for kind, count in (
        ("assets", report.assets_removed),
        ("uploads", report.uploads_removed),
        ("staged", report.staged_removed),
        ("multipart", report.multipart_aborted),
        ("temp_files", report.temp_files_removed),
        ("objects", report.objects_deleted),
        ("webhook_deliveries", report.deliveries_removed),
    ):
        metrics.sweeper_removed.labels(kind).inc(count)
    if (
        report.assets_removed
        or report.uploads_removed
        or report.staged_removed
        or report.multipart_aborted
    ):
        log.info(
            "sweep: %d deleted assets, %d stale uploads and %d staged uploads removed "
            "(%d objects), %d multipart uploads aborted",
            report.assets_removed,
            report.uploads_removed,
            report.staged_removed,
            report.objects_deleted,
            report.multipart_aborted,
        )
    if report.temp_files_removed:
        log.info("sweep: %d temporary files reaped", report.temp_files_removed)
    return report


async def _sweep_deleted_assets(storage: Storage, holder: str, report: SweepReport) -> None:
    while await _renew(holder):
        rows = (
            await Asset.filter(deleted_at__isnull=False)
            .limit(BATCH)
            .values_list("id", "storage_key")
        )
        if not rows:
            return
        ids = [r[0] for r in rows]
        keys = [r[1] for r in rows]
        keys += await Rendition.filter(asset_id__in=ids).values_list("storage_key", flat=True)
        await storage.delete_many(keys)
        await Rendition.filter(asset_id__in=ids).delete()
        await Upload.filter(asset_id__in=ids).delete()
        await MultipartUpload.filter(asset_id__in=ids).delete()
        await Asset.filter(id__in=ids, deleted_at__isnull=False).delete()
        report.assets_removed += len(ids)
        report.objects_deleted += len(keys)
        if len(rows) < BATCH:
            return


async def _sweep_stale_uploads(
    storage: Storage, holder: str, cutoff: dt.datetime, report: SweepReport
) -> None:
    while await _renew(holder):
        # Not while a finalize holds its lease: it is pinning or checking the bytes now.
        idle = Q(finalizing_until=None) | Q(finalizing_until__lt=dt.datetime.now(dt.UTC))
        rows = (
            await Upload.filter(idle, asset_id=None, created_at__lt=cutoff)
            .limit(BATCH)
            .values_list("id", "storage_key")
        )
        if not rows:
            return
        ids = [r[0] for r in rows]
        # Delete the rows first (only those still unclaimed): a finalize racing with us then
        # fails its conditional claim instead of creating an asset whose object is gone.
        await Upload.filter(idle, id__in=ids, asset_id=None).delete()
        survivors = set(await Upload.filter(id__in=ids).values_list("id", flat=True))
        keys = [key for upload_id, key in rows if upload_id not in survivors]
        await storage.delete_many([*keys, *(staging_key(k) for k in keys)])
        report.uploads_removed += len(keys)
        report.objects_deleted += len(keys)
        if len(rows) < BATCH:
            return


async def _sweep_stale_multipart(
    storage: Storage, holder: str, cutoff: dt.datetime, report: SweepReport
) -> None:
    while await _renew(holder):
        now = dt.datetime.now(dt.UTC)
        # Not completed, and not being completed right now (a dead complete's lease expires).
        idle = Q(state__in=("pending", "aborting")) | Q(state="completing", lease_until__lt=now)
        rows = await MultipartUpload.filter(idle, asset_id=None, created_at__lt=cutoff).limit(BATCH)
        if not rows:
            return
        ids = [row.id for row in rows]
        # Mark them first: a complete racing with us then fails its conditional claim.
        await MultipartUpload.filter(idle, id__in=ids, asset_id=None).update(state="aborting")
        taken = set(
            await MultipartUpload.filter(id__in=ids, state="aborting").values_list("id", flat=True)
        )
        for row in rows:
            if row.id in taken:
                await remove_aborted(storage, row)
                report.multipart_aborted += 1
        if len(rows) < BATCH:
            return


async def _sweep_staged(
    storage: Storage, holder: str, now: dt.datetime, report: SweepReport
) -> None:
    """Staged objects whose URL has expired, of uploads finalized or gone. A staged object
    written more than PRESIGN_SECONDS ago was presigned earlier still, so its URL has
    expired; an unfinalized upload keeps its staged object until it goes stale."""
    expired = now - dt.timedelta(seconds=PRESIGN_SECONDS)
    batch: list[str] = []

    async def flush() -> None:
        pending = set(
            await Upload.filter(storage_key__in=batch, asset_id=None).values_list(
                "storage_key", flat=True
            )
        )
        done = [k for k in batch if k not in pending]
        await storage.delete_staged(done)
        report.staged_removed += len(done)
        report.objects_deleted += len(done)
        batch.clear()

    async for key in storage.staged(older_than=expired):
        batch.append(key)
        if len(batch) >= BATCH:
            if not await _renew(holder):
                return
            await flush()
    if batch:
        await flush()
