"""Uploads straight to object storage: presign → client PUT → finalize.

Finalize trusts nothing the client says: the key must be under the caller's prefix and
issued by a presign of this organization, the object must exist with the declared size,
its leading bytes must match the declared mime type, and image dimensions are read from the
file header.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from tortoise.exceptions import IntegrityError
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from pixelwand.errors import BadRequest, Forbidden, PaymentRequired
from pixelwand.imaging.probe import UndecodableImage, image_dimensions
from pixelwand.imaging.sniff import (
    ACCEPTED_MIME_TYPES,
    IMAGE_MIME_TYPES,
    SNIFF_BYTES,
    matches,
)
from pixelwand.models import Asset, Upload
from pixelwand.services import facts
from pixelwand.services.assets import get_asset, replace_tag_rows
from pixelwand.services.collections import get_owned_collection_id
from pixelwand.services.records import AssetRecord, utcnow_ms
from pixelwand.services.validation import normalize_tags, require_name
from pixelwand.storage import Storage
from pixelwand.storage.keys import new_original_key, org_prefix

PRESIGN_SECONDS = 15 * 60
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
    """Live assets plus uploads presigned in the last 15 minutes and not finalized."""
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
    return int(assets[0] or 0) + int(pending[0] or 0)  # type: ignore[arg-type]


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
    if await storage_used(org_id) + size_ > quota:
        raise PaymentRequired("storage quota exceeded: upgrade your plan or delete assets")
    key = new_original_key(org_id, name)
    presigned = await storage.presign_put(key, mime, size_, PRESIGN_SECONDS)
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
    tags_ = normalize_tags(tags)
    display_name = require_name(name, "name") if name is not None else original
    if not storage_key.startswith(org_prefix(org_id)):
        raise Forbidden("storageKey belongs to another organization")
    upload = await Upload.filter(organization_id=org_id, storage_key=storage_key).first()
    if upload is None:
        raise BadRequest("upload not found: storageKey was not issued by a presign")
    if upload.asset_id is not None:
        return await _existing(org_id, upload.asset_id), False
    if upload.mime_type != mime:
        raise BadRequest(f"mimeType must be {upload.mime_type}, as declared at presign")
    if collection_id is not None:
        await get_owned_collection_id(org_id, collection_id, "collectionId")

    info = await storage.head(storage_key)
    if info is None:
        raise BadRequest("upload not found: nothing was stored at storageKey")
    if info.size != size_:
        raise BadRequest(f"uploaded object is {info.size} bytes, but size says {size_}")
    head = await storage.read_range(storage_key, 0, SNIFF_BYTES)
    if not matches(mime, head):
        raise BadRequest(f"file content does not match mimeType {mime}")
    width = height = None
    if mime in IMAGE_MIME_TYPES:
        width, height = await _dimensions(storage, run_blocking, storage_key, info.size)
    if await storage_used(org_id, exclude_upload=upload.id) + size_ > quota:
        raise PaymentRequired("storage quota exceeded: upgrade your plan or delete assets")

    try:
        async with in_transaction() as connection:
            asset = await Asset.create(
                organization_id=org_id,
                name=display_name,
                original_name=original,
                size=size_,
                mime_type=mime,
                media_type="IMAGE" if mime in IMAGE_MIME_TYPES else "VIDEO",
                storage_key=storage_key,
                tags=tags_,
                collection_id=collection_id,
                width=width,
                height=height,
                uploaded_at=utcnow_ms(),
            )
            claimed = await Upload.filter(id=upload.id, asset_id=None).update(asset_id=asset.id)
            if not claimed:
                raise IntegrityError("upload already finalized or swept")
            await replace_tag_rows(org_id, asset.id, tags_)
            await facts.enqueue(connection, asset.id)  # filled after the commit (facts.py)
    except IntegrityError:
        # A concurrent finalize of the same key won, or the sweeper removed the upload.
        again = await Upload.filter(id=upload.id).first()
        if again is not None and again.asset_id is not None:
            return await _existing(org_id, again.asset_id), False
        raise BadRequest("upload not found: it expired before it was finalized") from None
    facts.notify()
    return await get_asset(org_id, asset.id), True


async def _existing(org_id: str, asset_id: str) -> AssetRecord:
    from pixelwand.errors import NotFound

    try:
        return await get_asset(org_id, asset_id)
    except NotFound:
        raise BadRequest("upload not found: its asset was deleted") from None


async def _dimensions(storage: Storage, run_blocking, key: str, size: int) -> tuple[int, int]:
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
