"""Multipart, resumable uploads: start → PUT parts (any order, in parallel, re-sent at will)
→ complete, or abort. The protocol and its limits are in docs/multipart.md.

Complete trusts nothing the client says, as finalize does: every part 1..partCount must be
there, every part but the last exactly `partSize` bytes and the last the rest, the joined
object exactly the declared size, its leading bytes the declared type, and an image's
dimensions are read from its header.

States of a row: pending → completing (a lease, so one complete runs at a time and a
dead one is taken over) → completed (kept: completing again answers the same asset);
pending → aborting → row deleted. The sweeper aborts uploads never completed within the
retention period.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from pixelwand import metrics
from pixelwand.errors import BadRequest, Conflict, Forbidden, NotFound, PaymentRequired
from pixelwand.ids import is_valid_id, new_id
from pixelwand.imaging.sniff import IMAGE_MIME_TYPES, SNIFF_BYTES, matches
from pixelwand.models import Asset, MultipartUpload
from pixelwand.services import facts, webhooks
from pixelwand.services.assets import get_asset, replace_tag_rows
from pixelwand.services.collections import get_owned_collection_id
from pixelwand.services.records import AssetRecord, utcnow_ms
from pixelwand.services.uploads import (
    check_declared,
    existing_asset,
    reserving,
    storage_used,
    stored_image_dimensions,
)
from pixelwand.services.validation import normalize_tags, require_name
from pixelwand.storage import ObjectNotFound, PartInfo, PresignedUpload, Storage
from pixelwand.storage.keys import new_original_key

log = logging.getLogger(__name__)

T = TypeVar("T")

MIB = 1024 * 1024
# Parts are at least 8 MiB (S3 wants 5 MiB but for the last part), grown a MiB at a time
# until the file fits in S3's 10,000 parts: 8 MiB parts up to 78 GiB, 525 MiB at 5 TiB.
MIN_PART_SIZE = 8 * MIB
MAX_PARTS = 10_000
# Signed part URLs live an hour (capped by the upload's own expiry); clients ask again.
SIGN_SECONDS = 3600
MAX_SIGN_PER_REQUEST = 1000
# A complete holds a claim on its upload, renewed while it runs; one whose process died
# lapses within the lease, well before a retried complete stops waiting for it (60 s), so
# the retry takes over instead of answering 409.
COMPLETE_LEASE_SECONDS = 45.0
COMPLETE_RENEW_SECONDS = 15.0
# How long a complete waits for a concurrent one (same upload) to give its answer.
COMPLETE_WAIT_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class StartedUpload:
    upload_id: str
    storage_key: str
    part_size: int
    part_count: int
    expires_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class SignedPart:
    part_number: int
    url: str
    method: str
    headers: dict[str, str]
    expires_at: dt.datetime


def choose_part_size(size: int) -> int:
    """The smallest whole number of MiB, at least 8, that splits `size` into ≤ 10,000 parts."""
    part = max(MIN_PART_SIZE, -(-size // MAX_PARTS))
    return -(-part // MIB) * MIB


def expected_part_size(row: MultipartUpload, part_number: int) -> int:
    if part_number < row.part_count:
        return int(row.part_size)
    return int(row.size) - (row.part_count - 1) * int(row.part_size)


# --- quota --------------------------------------------------------------------------------


async def reserve_quota(
    org_id: str, quota: int, size: int, create: Callable[[], Awaitable[T]]
) -> T:
    """Check the quota and create the reservation (the upload row) that holds `size`, as
    one step under the organization's reservation lock (the one presign takes)."""
    async with reserving(org_id):
        if await storage_used(org_id) + size > quota:
            raise PaymentRequired("storage quota exceeded: upgrade your plan or delete assets")
        return await create()


# --- start, sign, list ----------------------------------------------------------------------


async def start_upload(
    storage: Storage,
    org_id: str,
    quota: int,
    *,
    original_name: str | None,
    mime_type: str | None,
    size: object,
    max_size: int,
    retention_seconds: float,
) -> StartedUpload:
    name, mime, size_ = check_declared(original_name, mime_type, size, max_size)
    part_size = choose_part_size(size_)
    part_count = -(-size_ // part_size)
    key = new_original_key(org_id, name)

    async def create() -> MultipartUpload:
        backend_id = await storage.create_multipart(key, mime)
        now = utcnow_ms()
        try:
            return await MultipartUpload.create(
                id=new_id(),
                organization_id=org_id,
                storage_key=key,
                backend_upload_id=backend_id,
                original_name=name,
                mime_type=mime,
                size=size_,
                part_size=part_size,
                part_count=part_count,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=retention_seconds),
            )
        except BaseException:
            await storage.abort_multipart(key, backend_id)
            raise

    row = await reserve_quota(org_id, quota, size_, create)
    return StartedUpload(
        upload_id=row.id,
        storage_key=key,
        part_size=part_size,
        part_count=part_count,
        expires_at=row.expires_at,
    )


async def _load(org_id: str, upload_id: str | None) -> MultipartUpload:
    if not upload_id:
        raise BadRequest("uploadId is required")
    row = await MultipartUpload.filter(id=upload_id).first() if is_valid_id(upload_id) else None
    if row is None or row.state == "aborting":
        raise NotFound(f"multipart upload {upload_id} not found")
    if row.organization_id != org_id:
        raise Forbidden("uploadId belongs to another organization")
    return row


def _being_completed(row: MultipartUpload) -> bool:
    """A complete holds the upload now (a claim whose process died lapses: not held)."""
    now = dt.datetime.now(dt.UTC)
    return row.state == "completing" and row.lease_until is not None and row.lease_until > now


def _require_open(row: MultipartUpload) -> None:
    """Parts may still be sent: not completed (parts are final then), not expired."""
    if row.asset_id is not None or row.state == "completed":
        raise Conflict(f"multipart upload {row.id} is complete: its parts are final")
    if _being_completed(row):
        raise Conflict(
            f"multipart upload {row.id} is being completed: its parts are final;"
            " complete again for its asset"
        )
    if row.expires_at <= dt.datetime.now(dt.UTC):
        raise NotFound(f"multipart upload {row.id} has expired")


def _check_part_numbers(row: MultipartUpload, part_numbers: list[int] | None) -> list[int]:
    if part_numbers is None:
        if row.part_count > MAX_SIGN_PER_REQUEST:
            raise BadRequest(
                f"partNumbers is required: this upload has {row.part_count} parts, and at most "
                f"{MAX_SIGN_PER_REQUEST} are signed per request"
            )
        return list(range(1, row.part_count + 1))
    if not part_numbers:
        raise BadRequest("partNumbers must list at least one part number")
    wanted = list(dict.fromkeys(part_numbers))
    if len(wanted) > MAX_SIGN_PER_REQUEST:
        raise BadRequest(f"partNumbers may list at most {MAX_SIGN_PER_REQUEST} parts per request")
    for n in wanted:
        if not 1 <= n <= row.part_count:
            raise BadRequest(f"partNumbers: {n} is outside 1..{row.part_count}")
    return wanted


async def sign_parts(
    storage: Storage, org_id: str, upload_id: str | None, part_numbers: list[int] | None
) -> list[SignedPart]:
    row = await _load(org_id, upload_id)
    wanted = _check_part_numbers(row, part_numbers)
    _require_open(row)
    remaining = (row.expires_at - dt.datetime.now(dt.UTC)).total_seconds()
    seconds = max(1, min(SIGN_SECONDS, int(remaining)))
    signed = []
    for n in wanted:
        url: PresignedUpload = await storage.presign_part(
            row.storage_key, row.backend_upload_id, n, expected_part_size(row, n), seconds
        )
        signed.append(SignedPart(n, url.url, url.method, url.headers, url.expires_at))
    return signed


async def list_parts(storage: Storage, org_id: str, upload_id: str | None) -> list[PartInfo]:
    row = await _load(org_id, upload_id)
    _require_open(row)
    try:
        return await storage.list_parts(row.storage_key, row.backend_upload_id)
    except ObjectNotFound:
        raise NotFound(f"multipart upload {row.id} not found") from None


async def part_upload_state(storage_key: str, backend_upload_id: str) -> str | None:
    """For a part PUT (local store): "open", "final" (completed or completing) or None."""
    row = await MultipartUpload.filter(storage_key=storage_key).first()
    if row is None or row.backend_upload_id != backend_upload_id or row.state == "aborting":
        return None
    if row.state == "completed" or row.asset_id is not None or _being_completed(row):
        return "final"
    return "open" if row.expires_at > dt.datetime.now(dt.UTC) else None


# --- complete -------------------------------------------------------------------------------


def _check_parts(
    row: MultipartUpload, received: list[PartInfo], claimed: list[dict] | None
) -> list[PartInfo]:
    """The parts to join, in order, once every one is there with its exact size."""
    by_number = {p.part_number: p for p in received}
    extra = sorted(n for n in by_number if not 1 <= n <= row.part_count)
    if extra:
        raise BadRequest(f"part {extra[0]} is outside 1..{row.part_count}")
    missing = [n for n in range(1, row.part_count + 1) if n not in by_number]
    if missing:
        shown = ", ".join(str(n) for n in missing[:10]) + (", …" if len(missing) > 10 else "")
        raise BadRequest(f"parts missing: {shown} (of {row.part_count})")
    for n in range(1, row.part_count + 1):
        want, got = expected_part_size(row, n), by_number[n].size
        if got != want:
            which = "the last part" if n == row.part_count else "every part but the last"
            raise BadRequest(
                f"part {n} is {got} bytes, but {which} must be {want} bytes"
                f" (partSize {row.part_size}, size {row.size})"
            )
    if claimed is not None:
        _check_claimed(row, by_number, claimed)
    return [by_number[n] for n in range(1, row.part_count + 1)]


def _check_claimed(
    row: MultipartUpload, by_number: dict[int, PartInfo], claimed: list[dict]
) -> None:
    """The client's own list (S3's CompleteMultipartUpload body) must name what is stored."""
    seen = set()
    for item in claimed:
        n, etag = item["part_number"], item.get("etag")
        if not 1 <= n <= row.part_count:
            raise BadRequest(f"parts: {n} is outside 1..{row.part_count}")
        if n in seen:
            raise BadRequest(f"parts: part {n} is listed twice")
        seen.add(n)
        if etag is not None and etag.strip('"') != by_number[n].etag.strip('"'):
            raise BadRequest(f"parts: part {n}'s etag does not match the part received")
    if len(seen) != row.part_count:
        missing = next(n for n in range(1, row.part_count + 1) if n not in seen)
        raise BadRequest(f"parts: part {missing} is not listed (every part must be)")


def _lease_end() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=COMPLETE_LEASE_SECONDS)


async def _claim(row: MultipartUpload) -> bool:
    now = dt.datetime.now(dt.UTC)
    open_or_stale = Q(state="pending") | Q(state="completing", lease_until__lt=now)
    return bool(
        await MultipartUpload.filter(open_or_stale, id=row.id, asset_id=None).update(
            state="completing", lease_until=_lease_end()
        )
    )


@contextlib.asynccontextmanager
async def _holding_claim(row: MultipartUpload) -> AsyncIterator[None]:
    """Renew the complete's claim every COMPLETE_RENEW_SECONDS while the block runs."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(COMPLETE_RENEW_SECONDS)
            try:
                await MultipartUpload.filter(id=row.id, state="completing", asset_id=None).update(
                    lease_until=_lease_end()
                )
            except Exception:  # the database may be down for a moment: the next round
                log.warning("renewing the claim of multipart upload %s failed", row.id)

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _release(row: MultipartUpload) -> None:
    await MultipartUpload.filter(id=row.id, state="completing", asset_id=None).update(
        state="pending", lease_until=None
    )


async def _discard(storage: Storage, row: MultipartUpload) -> None:
    """Everything of an upload whose joined bytes were refused: the object and the row."""
    await MultipartUpload.filter(id=row.id, asset_id=None).update(state="aborting")
    await storage.abort_multipart(row.storage_key, row.backend_upload_id)
    await storage.delete_many([row.storage_key])
    await MultipartUpload.filter(id=row.id, asset_id=None).delete()


async def complete_upload(
    storage: Storage,
    run_blocking,
    org_id: str,
    *,
    upload_id: str | None,
    parts: list[dict] | None = None,
    tags: list[str] | None = None,
    collection_id: str | None = None,
    name: str | None = None,
) -> tuple[AssetRecord, bool]:
    """(asset, created). Completing the same upload again answers the same asset."""
    tags_ = normalize_tags(tags)
    display_name = require_name(name, "name") if name is not None else None
    row = await _load(org_id, upload_id)
    if row.asset_id is not None:
        return await existing_asset(org_id, row.asset_id), False
    if row.expires_at <= dt.datetime.now(dt.UTC):
        raise NotFound(f"multipart upload {row.id} has expired")
    if collection_id is not None:
        await get_owned_collection_id(org_id, collection_id, "collectionId")
    if not await _claim(row):
        done = await _after_other_complete(org_id, row)
        if done is not None:
            return done, False

    async with _holding_claim(row):
        width, height = await _join_and_check(storage, run_blocking, row, parts)
    return await _create_asset(
        row, org_id, display_name or row.original_name, tags_, collection_id, width, height
    )


async def _join_and_check(
    storage: Storage, run_blocking, row: MultipartUpload, parts: list[dict] | None
) -> tuple[int | None, int | None]:
    """Join the parts and check the object: its image dimensions. A refused object
    discards the upload; any other failure gives it back (parts may be added, complete
    retried)."""
    try:
        await _join(storage, row, parts)
    except BaseException:
        await _release(row)
        raise
    try:
        return await _check_object(storage, run_blocking, row)
    except BadRequest as exc:
        await _discard(storage, row)
        raise BadRequest(f"{exc.message}; the upload was discarded") from None
    except BaseException:
        await _release(row)
        raise


async def _after_other_complete(org_id: str, row: MultipartUpload) -> AssetRecord | None:
    """Another request holds the complete: wait for its outcome, as a repeated complete
    answers. Its asset (None: it gave the upload back, and this request has claimed it), or
    404 when its upload was discarded, or 409 when it is still running after the wait."""
    deadline = asyncio.get_running_loop().time() + COMPLETE_WAIT_SECONDS
    pause = 0.05
    while True:
        again = await MultipartUpload.filter(id=row.id).first()
        if again is not None and again.asset_id is not None:
            return await existing_asset(org_id, again.asset_id)
        if again is None or again.state == "aborting":
            raise NotFound(f"multipart upload {row.id} not found")
        if await _claim(row):
            return None
        if asyncio.get_running_loop().time() >= deadline:
            raise Conflict(
                f"multipart upload {row.id} is still being completed by another request:"
                " complete again later for its asset"
            )
        await asyncio.sleep(pause)
        pause = min(1.0, pause * 2)


async def _join(storage: Storage, row: MultipartUpload, claimed: list[dict] | None) -> None:
    try:
        received = await storage.list_parts(row.storage_key, row.backend_upload_id)
    except ObjectNotFound:
        # The store joined the parts already and the request that asked died before the row
        # said so: the object is there, and is checked below like any other.
        info = await storage.head(row.storage_key)
        if info is not None and info.size == row.size:
            return
        raise BadRequest("upload not found: its parts are gone") from None
    to_join = _check_parts(row, received, claimed)
    try:
        await storage.complete_multipart(row.storage_key, row.backend_upload_id, to_join)
    except ObjectNotFound:
        raise BadRequest("upload not found: a part disappeared while completing") from None


async def _check_object(
    storage: Storage, run_blocking, row: MultipartUpload
) -> tuple[int | None, int | None]:
    info = await storage.head(row.storage_key)
    if info is None:
        raise BadRequest("upload not found: nothing was stored at storageKey")
    if info.size != row.size:
        raise BadRequest(f"uploaded object is {info.size} bytes, but size says {row.size}")
    head = await storage.read_range(row.storage_key, 0, SNIFF_BYTES)
    if not matches(row.mime_type, head):
        raise BadRequest(f"file content does not match mimeType {row.mime_type}")
    if row.mime_type in IMAGE_MIME_TYPES:
        return await stored_image_dimensions(storage, run_blocking, row.storage_key, info.size)
    return None, None


async def _create_asset(
    row: MultipartUpload,
    org_id: str,
    display_name: str,
    tags: list[str],
    collection_id: str | None,
    width: int | None,
    height: int | None,
) -> tuple[AssetRecord, bool]:
    try:
        async with in_transaction() as connection:
            asset = await Asset.create(
                organization_id=org_id,
                name=display_name,
                original_name=row.original_name,
                size=row.size,
                mime_type=row.mime_type,
                media_type="IMAGE" if row.mime_type in IMAGE_MIME_TYPES else "VIDEO",
                storage_key=row.storage_key,
                tags=tags,
                collection_id=collection_id,
                width=width,
                height=height,
                uploaded_at=utcnow_ms(),
            )
            claimed = await MultipartUpload.filter(
                id=row.id, state="completing", asset_id=None
            ).update(asset_id=asset.id, state="completed", lease_until=None)
            if not claimed:
                raise IntegrityError("upload already completed or swept")
            await replace_tag_rows(org_id, asset.id, tags)
            await facts.enqueue(connection, asset.id)  # filled after the commit (facts.py)
            event = await webhooks.record(
                org_id, "asset.finalized", lambda: webhooks.asset_snapshot(asset.id)
            )
    except IntegrityError:
        again = await MultipartUpload.filter(id=row.id).first()
        if again is not None and again.asset_id is not None:
            return await existing_asset(org_id, again.asset_id), False
        raise NotFound(f"multipart upload {row.id} expired before it was completed") from None
    metrics.bytes_stored.inc(row.size)
    facts.notify()
    if event:
        webhooks.wake_workers()
    return await get_asset(org_id, asset.id), True


# --- abort ----------------------------------------------------------------------------------


async def abort_upload(storage: Storage, org_id: str, upload_id: str | None) -> str:
    row = await _load(org_id, upload_id)
    if row.asset_id is not None:
        raise Conflict(f"multipart upload {row.id} is complete: delete its asset instead")
    now = dt.datetime.now(dt.UTC)
    open_or_stale = Q(state="pending") | Q(state="completing", lease_until__lt=now)
    taken = await MultipartUpload.filter(open_or_stale, id=row.id, asset_id=None).update(
        state="aborting"
    )
    if not taken:
        again = await MultipartUpload.filter(id=row.id).first()
        if again is None or again.state == "aborting":
            raise NotFound(f"multipart upload {row.id} not found")
        raise Conflict(f"multipart upload {row.id} is being completed")
    await remove_aborted(storage, row)
    return row.id


async def remove_aborted(storage: Storage, row: MultipartUpload) -> None:
    """The store's parts (and any object a dead complete left), then the row."""
    await storage.abort_multipart(row.storage_key, row.backend_upload_id)
    await storage.delete_many([row.storage_key])
    await MultipartUpload.filter(id=row.id, state="aborting").delete()
