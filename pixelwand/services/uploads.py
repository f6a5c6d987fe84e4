"""Uploads straight to object storage: presign → client PUT → finalize.

Finalize trusts nothing the client says: the key must be under the caller's prefix and
issued by a presign of this organization, the object must exist with the declared size,
its leading bytes must match the declared mime type, and image dimensions are read from the
file header.

Final means final: the client's PUT lands in a staged object that the URL names; finalize
pins it to the storage key (a rename, or a server-side copy on S3), which no URL ever
handed out can write, and checks the pinned bytes, so what was checked is what is served.
One finalize per key works at a time (a lease on the upload row, on every process), so a
second one cannot pin other bytes over a finalized asset's.

Quota: reservations (presign) and their conversion into assets (finalize) are serialized
per organization (`_reserving`), so concurrent requests never grant more than fits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Sum

from pixelwand import metrics
from pixelwand.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PaymentRequired,
    StorageUnavailable,
)
from pixelwand.imaging.probe import UndecodableImage, image_dimensions
from pixelwand.imaging.sniff import (
    ACCEPTED_MIME_TYPES,
    IMAGE_MIME_TYPES,
    SNIFF_BYTES,
    matches,
)
from pixelwand.models import Asset, MultipartUpload, Upload
from pixelwand.services import facts, webhooks
from pixelwand.services.assets import get_asset, replace_tag_rows
from pixelwand.services.collections import get_owned_collection_id
from pixelwand.services.organizations import locked as reserving
from pixelwand.services.records import AssetRecord, utcnow_ms
from pixelwand.services.validation import check_text, normalize_tags, require_name
from pixelwand.storage import Storage
from pixelwand.storage.keys import new_original_key, org_prefix

PRESIGN_SECONDS = 15 * 60
# How long a finalize lease lasts unless renewed, and how often a finalize waiting for
# another finalize of the same key looks again.
LEASE_SECONDS = 30.0
_LEASE_POLL_SECONDS = 0.1
# Header bytes read to find an image's dimensions; grown up to the whole file for
# formats whose size field sits late (JPEG after a large EXIF block).
_HEADER_READS = (64 * 1024, 1024 * 1024, 16 * 1024 * 1024)


@dataclasses.dataclass(frozen=True)
class PresignedUploadResult:
    upload_url: str
    method: str
    headers: dict[str, str]
    storage_key: str
    expires_at: dt.datetime


def check_declared(original_name: str | None, mime_type: str | None, size: object, max_size: int):
    name = require_name(original_name, "originalName")
    if not mime_type:
        raise BadRequest("mimeType is required")
    check_text(mime_type, "mimeType", 255)
    mime = mime_type.strip().lower()
    if mime in ("image/heic", "image/heif"):
        raise BadRequest(
            "mimeType image/heic is not supported: this server's libvips has no HEVC decoder;"
            " convert to JPEG, PNG, WebP or AVIF first"
        )
    if mime not in ACCEPTED_MIME_TYPES:
        accepted = ", ".join(sorted(ACCEPTED_MIME_TYPES))
        raise BadRequest(f"mimeType {mime_type} is not supported; accepted: {accepted}")
    if isinstance(size, bool) or not isinstance(size, int):
        raise BadRequest("size must be a whole number of bytes")
    if size <= 0:
        raise BadRequest("size must be positive")
    if size > max_size:
        raise BadRequest(f"size must be at most {max_size} bytes")
    return name, mime, size


async def storage_used(org_id: str, *, exclude_upload: str | None = None) -> int:
    """Live assets, uploads presigned in the last 15 minutes and not finalized, and multipart
    uploads started, not completed and not expired."""
    assets = (
        await Asset.filter(organization_id=org_id, deleted_at=None)
        .annotate(total=Sum("size"))
        .values_list("total", flat=True)
    )
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=PRESIGN_SECONDS)
    pending_q = Upload.filter(organization_id=org_id, asset_id=None, created_at__gte=since)
    if exclude_upload:
        pending_q = pending_q.exclude(id=exclude_upload)
    pending = await pending_q.annotate(total=Sum("size")).values_list("total", flat=True)
    multipart = (
        await MultipartUpload.filter(
            organization_id=org_id, asset_id=None, expires_at__gt=dt.datetime.now(dt.UTC)
        )
        .annotate(total=Sum("size"))
        .values_list("total", flat=True)
    )
    return int(assets[0] or 0) + int(pending[0] or 0) + int(multipart[0] or 0)  # type: ignore[arg-type]


async def upload_is_open(storage_key: str) -> bool:
    """Whether a PUT may still write `storage_key`'s staged object: not once finalized."""
    return not await Upload.filter(storage_key=storage_key, asset_id__not_isnull=True).exists()


async def presign_upload(
    storage: Storage,
    org_id: str,
    quota: int,
    *,
    original_name: str | None,
    mime_type: str | None,
    size: object,
    max_size: int,
) -> PresignedUploadResult:
    name, mime, size_ = check_declared(original_name, mime_type, size, max_size)
    key = new_original_key(org_id, name)
    presigned = await storage.presign_put(key, mime, size_, PRESIGN_SECONDS)
    async with reserving(org_id):
        if await storage_used(org_id) + size_ > quota:
            raise PaymentRequired("storage quota exceeded: upgrade your plan or delete assets")
        await Upload.create(
            organization_id=org_id,
            storage_key=key,
            original_name=name,
            mime_type=mime,
            size=size_,
            created_at=utcnow_ms(),
        )
    return PresignedUploadResult(
        upload_url=presigned.url,
        method=presigned.method,
        headers=presigned.headers,
        storage_key=key,
        expires_at=presigned.expires_at,
    )


async def finalize_upload(
    storage: Storage,
    run_blocking,
    org_id: str,
    quota: int,
    *,
    original_name: str | None,
    mime_type: str | None,
    size: object,
    storage_key: str | None,
    tags: list[str] | None = None,
    collection_id: str | None = None,
    name: str | None = None,
    max_size: int,
) -> tuple[AssetRecord, bool]:
    """(asset, created). Finalizing the same key again answers the same asset."""
    original, mime, size_ = check_declared(original_name, mime_type, size, max_size)
    if not storage_key:
        raise BadRequest("storageKey is required")
    check_text(storage_key, "storageKey", 512)
    tags_ = normalize_tags(tags)
    display_name = require_name(name, "name") if name is not None else original
    if not storage_key.startswith(org_prefix(org_id)):
        raise Forbidden("storageKey belongs to another organization")
    upload = await Upload.filter(organization_id=org_id, storage_key=storage_key).first()
    if upload is None:
        raise BadRequest("upload not found: storageKey was not issued by a presign")
    if upload.asset_id is not None:
        return await existing_asset(org_id, upload.asset_id), False
    if upload.mime_type != mime:
        raise BadRequest(f"mimeType must be {upload.mime_type}, as declared at presign")
    if collection_id is not None:
        await get_owned_collection_id(org_id, collection_id, "collectionId")

    holder = uuid.uuid4().hex
    while not await _take_lease(upload.id, holder):
        # Another finalize of this key is pinning and checking it: wait for its outcome
        # (its asset, or a released or expired lease), never pin beside it.
        again = await Upload.filter(id=upload.id).first()
        if again is None:
            raise BadRequest("upload not found: it expired before it was finalized")
        if again.asset_id is not None:
            return await existing_asset(org_id, again.asset_id), False
        await asyncio.sleep(_LEASE_POLL_SECONDS)
    renewing = asyncio.create_task(_keep_lease(upload.id, holder))
    try:
        return await _pin_check_and_record(
            storage,
            run_blocking,
            org_id,
            quota,
            upload.id,
            holder,
            original=original,
            display_name=display_name,
            mime=mime,
            size=size_,
            storage_key=storage_key,
            tags=tags_,
            collection_id=collection_id,
        )
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        await Upload.filter(id=upload.id, finalizing_by=holder).update(
            finalizing_by=None, finalizing_until=None
        )


async def _take_lease(upload_id: str, holder: str) -> bool:
    now = dt.datetime.now(dt.UTC)
    taken = await Upload.filter(
        Q(finalizing_until=None) | Q(finalizing_until__lt=now), id=upload_id, asset_id=None
    ).update(finalizing_by=holder, finalizing_until=now + dt.timedelta(seconds=LEASE_SECONDS))
    return bool(taken)


async def _keep_lease(upload_id: str, holder: str) -> None:
    """Renew the lease while the finalize works (a copy of gigabytes takes minutes): a
    short lease that lives as long as its holder, so a finalize whose process was killed
    holds up the next one for LEASE_SECONDS at most."""
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)
        with contextlib.suppress(Exception):  # a failed renewal is retried; the claim checks
            until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LEASE_SECONDS)
            await Upload.filter(id=upload_id, finalizing_by=holder).update(finalizing_until=until)


async def _pin_check_and_record(
    storage: Storage,
    run_blocking,
    org_id: str,
    quota: int,
    upload_id: str,
    holder: str,
    *,
    original: str,
    display_name: str,
    mime: str,
    size: int,
    storage_key: str,
    tags: list[str],
    collection_id: str | None,
) -> tuple[AssetRecord, bool]:
    # Pin first, then check what was pinned: a PUT racing with us can only change the
    # staged object, never the bytes checked here. Nothing staged: an earlier attempt
    # pinned them already (and failed later), or the upload predates staging.
    await storage.pin(storage_key)
    info = await storage.head(storage_key)
    if info is None:
        raise BadRequest("upload not found: nothing was stored at storageKey")
    try:
        if info.size != size:
            raise BadRequest(f"uploaded object is {info.size} bytes, but size says {size}")
        head = await storage.read_range(storage_key, 0, SNIFF_BYTES)
        if not matches(mime, head):
            raise BadRequest(f"file content does not match mimeType {mime}")
        width = height = None
        if mime in IMAGE_MIME_TYPES:
            width, height = await stored_image_dimensions(
                storage, run_blocking, storage_key, info.size
            )
    except BadRequest:
        # Refused bytes are not kept: the client PUTs again (its URL still valid) and
        # finalizes again.
        await storage.delete_many([storage_key])
        raise

    try:
        async with reserving(org_id) as connection:
            if await storage_used(org_id, exclude_upload=upload_id) + size > quota:
                raise PaymentRequired("storage quota exceeded: upgrade your plan or delete assets")
            asset = await Asset.create(
                organization_id=org_id,
                name=display_name,
                original_name=original,
                size=size,
                mime_type=mime,
                media_type="IMAGE" if mime in IMAGE_MIME_TYPES else "VIDEO",
                storage_key=storage_key,
                tags=tags,
                collection_id=collection_id,
                width=width,
                height=height,
                uploaded_at=utcnow_ms(),
            )
            claimed = await Upload.filter(id=upload_id, asset_id=None, finalizing_by=holder).update(
                asset_id=asset.id, finalizing_by=None, finalizing_until=None
            )
            if not claimed:
                raise IntegrityError("upload already finalized, swept or taken over")
            await replace_tag_rows(org_id, asset.id, tags)
            event = await webhooks.record(
                org_id, "asset.finalized", lambda: webhooks.asset_snapshot(asset.id)
            )
            await facts.enqueue(connection, asset.id)  # filled after the commit (facts.py)
    except IntegrityError:
        # The sweeper removed the upload, or our lease expired and another finalize won.
        again = await Upload.filter(id=upload_id).first()
        if again is not None and again.asset_id is not None:
            return await existing_asset(org_id, again.asset_id), False
        raise BadRequest("upload not found: it expired before it was finalized") from None
    metrics.bytes_stored.inc(size)
    if event:
        webhooks.wake_workers()
    # The staged object is of no use any more. A PUT may still re-create it while its URL
    # lives; the sweeper deletes that once the URL has expired.
    with contextlib.suppress(StorageUnavailable):
        await storage.delete_staged([storage_key])
    facts.notify()
    return await get_asset(org_id, asset.id), True


async def existing_asset(org_id: str, asset_id: str) -> AssetRecord:
    """The asset an upload became; 400 once that asset was deleted."""
    try:
        return await get_asset(org_id, asset_id)
    except NotFound:
        raise BadRequest("upload not found: its asset was deleted") from None


async def stored_image_dimensions(
    storage: Storage, run_blocking, key: str, size: int
) -> tuple[int, int]:
    """(width, height) of the stored image at `key`, from its header alone: the file itself
    on local storage, else growing ranged reads; 400 "could not decode image" otherwise.
    Finalize and multipart complete both use it."""
    path = await storage.local_path(key)
    if path is not None:
        try:
            return await run_blocking(image_dimensions, path)
        except UndecodableImage:
            raise BadRequest("could not decode image") from None
    for length in _HEADER_READS:
        data = await storage.read_range(key, 0, length)
        try:
            return await run_blocking(image_dimensions, data)
        except UndecodableImage:
            if len(data) >= size or length == _HEADER_READS[-1]:
                break
    raise BadRequest("could not decode image")
