"""Facts about the media, computed after finalize by a durable worker.

Finalize writes a `fact_jobs` row in the same transaction as the asset (one more INSERT,
so finalize stays as fast as it was) and wakes this process's worker. Each serving process
runs a worker; a worker claims jobs under a lease (a conditional UPDATE that only one
process can win), computes the facts on a thread of its own, and writes them and deletes
the job in one transaction. A worker killed mid-job (kill -9) leaves its job leased; the
lease expires (PIXELWAND_FACTS_LEASE_SECONDS) and the next worker to look — this process
restarted, or another — takes it up. A job whose computation keeps killing its process is
dropped after MAX_ATTEMPTS starts, its facts left null. Long jobs (hashing a large video)
renew their lease while they run.

Facts: `content_hash` for every asset (the local backend's hash taken while the upload
streamed in, else the bytes read back); thumbhash, blurhash, dominant colour and the
automatic focal point for images (imaging/focal.py); duration, codec, frame rate, size and
the focal point of the 25% poster frame for videos (imaging/video.py). Media that do not
decode keep those null; the job still completes.

Image facts decode pixels, so they obey the render memory budget like any render
(services/rendering.py): their peak is estimated from the header first (a thumbnail to
FOCAL_SIDE); above PIXELWAND_RENDER_MEMORY_BYTES the image gets its hash alone (a 779 KB
PNG of 10,000,000 x 10 RGBA16 pixels took 13.6 GB here before); otherwise the estimate is
reserved in the process's shared total while the facts are computed. Videos likewise: the
poster frame's estimate from the declared frame size (budget.video_frame_memory); above the
limit a video gets its hash and probed facts without the poster's focal point.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import errno
import hashlib
import io
import logging
import math
import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from pixelwand.errors import PixelWandError, RenderQueueFull, StorageUnavailable
from pixelwand.imaging.budget import video_frame_memory
from pixelwand.imaging.errors import ImageTooLarge, UndecodableImage
from pixelwand.imaging.params import TransformParams
from pixelwand.imaging.pipeline import memory_needed
from pixelwand.models import Asset, FactJob
from pixelwand.runtime import Runtime
from pixelwand.services import webhooks
from pixelwand.services.posters import RangeReader
from pixelwand.services.records import utcnow_ms
from pixelwand.services.rendering import budget_for
from pixelwand.storage.base import ObjectNotFound

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
CLAIM_BATCH = 8
_HASH_CHUNK = 1024 * 1024

# Workers of this process, woken when a finalize has committed a job.
_events: set[asyncio.Event] = set()


# How long after a finalize's commit its worker starts. The facts run on a thread, but
# their pure-Python steps (ThumbHash, the colour count) hold the GIL: started at once, they
# delayed the finalize's own answer (+25% on its p50, measured); a few milliseconds later the
# answer has left.
WAKE_DELAY_SECONDS = 0.02


def notify() -> None:
    """Wake this process's workers shortly (call from the event loop, after the commit)."""
    if not _events:
        return
    asyncio.get_running_loop().call_later(WAKE_DELAY_SECONDS, _wake)


def _wake() -> None:
    for event in _events:
        event.set()


async def enqueue(connection: Any, asset_id: str) -> None:
    """Record that `asset_id` needs its facts, on `connection` (the asset's transaction).

    Written out rather than `FactJob.create`: the ORM's create cost ~1 ms of CPU on the
    finalize path, a statement with two parameters a tenth of that."""
    mark = "$" if connection.capabilities.dialect == "postgres" else "?"
    await connection.execute_query(
        f"INSERT INTO fact_jobs (asset_id, created_at, attempts) VALUES ({mark}1, {mark}2, 0)",
        [asset_id, utcnow_ms()],
    )


async def enqueue_missing() -> int:
    """Queue every live asset whose facts were never computed (`pixelwand backfill`)."""
    pending = set(await FactJob.all().values_list("asset_id", flat=True))
    ids = await Asset.filter(deleted_at=None, content_hash=None).values_list("id", flat=True)
    todo = [i for i in ids if i not in pending]
    now = utcnow_ms()
    for start in range(0, len(todo), 500):
        await FactJob.bulk_create(
            [FactJob(asset_id=i, created_at=now) for i in todo[start : start + 500]],
            ignore_conflicts=True,
        )
    return len(todo)


async def pending_count() -> int:
    return await FactJob.all().count()


# --- computing ---------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _out_of_space(exc: BaseException) -> bool:
    """Whether a StorageUnavailable came from our own disk being full (ENOSPC, EDQUOT)."""
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def compute(
    path: Path | io.IOBase,
    *,
    media_type: str,
    mime_type: str,
    known_sha256: str | None,
    max_pixels: int,
    decode: bool = True,
) -> dict[str, Any]:
    """The asset columns to write (blocking). Undecodable media give the hash alone; without
    `decode` (too large for the memory budget) images give the hash alone and videos what
    their headers say. A video may be a reader over the stored object (its hash given)."""
    if known_sha256 is None:
        assert isinstance(path, Path)
        known_sha256 = _file_sha256(path)
    values: dict[str, Any] = {"content_hash": f"sha256:{known_sha256}"}
    if media_type == "IMAGE":
        assert isinstance(path, Path)
        if not decode:
            return values
        from pixelwand.imaging.focal import image_facts

        try:
            facts = image_facts(path, source_mime=mime_type, max_pixels=max_pixels)
        except (UndecodableImage, ImageTooLarge, PixelWandError):
            return values
        values.update(
            thumbhash=facts.thumbhash,
            blurhash=facts.blurhash,
            dominant_color=facts.dominant_color,
            focal_auto_x=facts.focal[0],
            focal_auto_y=facts.focal[1],
        )
        return values
    values.update(_video_values(path, max_pixels, poster=decode))
    return values


def facts_memory(path: Path | io.IOBase, media_type: str, mime_type: str, max_pixels: int) -> int:
    """Estimated peak bytes of computing a file's facts (blocking: it reads the header).
    A video may be a reader over the stored object; an image is always a file."""
    if media_type == "IMAGE":
        assert isinstance(path, Path)
        return image_facts_memory(path, mime_type, max_pixels)
    return video_facts_memory(path)


def image_facts_memory(path: Path, mime_type: str, max_pixels: int) -> int:
    """Estimated peak bytes of an image's facts (the thumbnail decode), from its header;
    0 for a header that does not decode (the facts then give the hash alone)."""
    from pixelwand.imaging.focal import FOCAL_SIDE

    params = TransformParams(format="PNG", max_width=FOCAL_SIDE, max_height=FOCAL_SIDE)
    try:
        return memory_needed(path, params, source_mime=mime_type, max_pixels=max_pixels)
    except (UndecodableImage, ImageTooLarge, PixelWandError):
        return 0


def video_facts_memory(path: Path | io.IOBase) -> int:
    """Estimated peak bytes of a video's facts (its 25% poster frame); 0 when the headers
    do not tell the frame size (the facts then stop at the probe)."""
    from pixelwand.imaging import video
    from pixelwand.imaging.focal import FOCAL_SIDE

    if not video.available():
        return 0
    try:
        width, height = video.frame_size(path)
    except video.UndecodableVideo:
        return 0
    return video_frame_memory(
        width, height, output_pixels=FOCAL_SIDE * FOCAL_SIDE, output_format="PNG"
    )


def _video_values(path: Path | io.IOBase, max_pixels: int, *, poster: bool) -> dict[str, Any]:
    from pixelwand.imaging import video

    if not video.available():  # installed without the `video` extra
        return {}
    from pixelwand.imaging.focal import FOCAL_SIDE, _srgb, attention_point

    try:
        probed = video.probe(path)
    except video.UndecodableVideo:
        return {}
    values: dict[str, Any] = {
        "duration_seconds": _finite(probed.duration_seconds),
        "video_codec": (probed.video_codec or "")[:32] or None,
        "frame_rate": _finite(probed.frame_rate),
        "width": probed.width,
        "height": probed.height,
    }
    if not poster:
        return values
    try:
        frame = video.poster_frame(
            path,
            video.PosterAt(percent=25.0),
            max_pixels=max_pixels,
            duration=probed.duration_seconds,  # from the packets when the headers lack it
        )
        values["width"], values["height"] = frame.width, frame.height  # upright
        x, y = attention_point(_srgb(frame.thumbnail_image(FOCAL_SIDE, height=FOCAL_SIDE)))
        values["focal_auto_x"], values["focal_auto_y"] = x, y
    except (video.UndecodableVideo, video.VideoTooLarge, video.PosterPastEnd):
        pass
    except Exception:  # a poster is a bonus: the probed facts stand without it
        log.info("no poster frame for facts of %s", getattr(path, "name", path), exc_info=True)
    return values


# --- the worker --------------------------------------------------------------------------


@dataclasses.dataclass
class Progress:
    done: int = 0


class FactsWorker:
    """Claims fact jobs under a lease and fills the facts in, one asset at a time."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.lease = dt.timedelta(seconds=settings.facts_lease_seconds)
        self.poll_seconds = settings.facts_poll_seconds
        self.holder = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._event = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facts")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def run_forever(self) -> None:
        _events.add(self._event)
        try:
            while True:
                self._event.clear()  # before looking: a commit after this wakes us again
                try:
                    done = await self.run_once()
                except Exception:  # an outage: look again at the next poll
                    log.exception("facts worker round failed")
                    done = 0
                if not done:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._event.wait(), self.poll_seconds)
        finally:
            _events.discard(self._event)

    async def run_once(self, on_done: Callable[[int], None] | None = None) -> int:
        """Claim a batch of jobs and fill them in; how many were completed."""
        done = 0
        for asset_id in await self._claim():
            try:
                await self._process(asset_id)
            except (RenderQueueFull, StorageUnavailable) as exc:
                # Renders fill the budget, or the store is out: nothing wrong with the media.
                # The claim is given back uncounted (counting it dropped the job after
                # MAX_ATTEMPTS busy minutes), and the job is looked at again after a poll.
                log.info("facts of asset %s wait: %s", asset_id, exc.message)
                await self._release(asset_id)
                continue
            except Exception:  # a bug in one job must not hold up the others claimed with it
                log.exception("facts of asset %s failed; retried when its lease expires", asset_id)
                continue
            done += 1
            if on_done is not None:
                on_done(done)
        return done

    async def _claim(self) -> list[str]:
        now = utcnow_ms()
        free = Q(lease_expires_at=None) | Q(lease_expires_at__lt=now)
        candidates = (
            await FactJob.filter(free)
            .order_by("created_at")
            .limit(CLAIM_BATCH)
            .values_list("asset_id", flat=True)
        )
        claimed = []
        for asset_id in candidates:
            won = await FactJob.filter(free, asset_id=asset_id).update(
                holder=self.holder, lease_expires_at=now + self.lease
            )
            if won:
                claimed.append(str(asset_id))
        return claimed

    async def _process(self, asset_id: str) -> None:
        # An attempt counts when the job starts, not when its batch is claimed: a kill in
        # one job must not count against the jobs claimed with it and never started.
        started = await FactJob.filter(asset_id=asset_id, holder=self.holder).update(
            attempts=F("attempts") + 1
        )
        job = await FactJob.filter(asset_id=asset_id, holder=self.holder).first()
        if not started or job is None:
            return  # lost the lease meanwhile
        asset = await Asset.filter(id=asset_id, deleted_at=None).first()
        if asset is None:
            await FactJob.filter(asset_id=asset_id).delete()
            return
        if job.attempts > MAX_ATTEMPTS:
            log.warning("facts of asset %s given up after %d attempts", asset_id, job.attempts)
            await FactJob.filter(asset_id=asset_id).delete()
            return
        renew = asyncio.create_task(self._renew_while_running(asset_id))
        try:
            values = await self._compute(asset)
        except (ObjectNotFound, FileNotFoundError):
            log.warning("facts of asset %s: its original is missing from storage", asset_id)
            values = {}
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
        event = None
        async with in_transaction():
            # Only a live asset: one deleted meanwhile keeps its row as it was, and no
            # asset.updated follows its asset.deleted.
            if values and await Asset.filter(id=asset_id, deleted_at=None).update(**values):
                event = await webhooks.record(
                    asset.organization_id,
                    "asset.updated",
                    lambda: webhooks.asset_snapshot(asset_id),
                )
            await FactJob.filter(asset_id=asset_id).delete()
        if event:
            webhooks.wake_workers()

    async def _compute(self, asset: Asset) -> dict[str, Any]:
        storage = self.runtime.storage
        known = await storage.known_sha256(asset.storage_key)
        if asset.media_type == "VIDEO" and await storage.local_path(asset.storage_key) is None:
            return await self._compute_by_ranges(asset, known)
        try:
            async with storage.local_copy(asset.storage_key) as path:
                return await self._compute_from(asset, path, known)
        except StorageUnavailable as exc:
            if not _out_of_space(exc):
                raise
            # Our temporary disk cannot hold the image: waiting a poll would copy it again,
            # fill the disk again and fail again, for ever. The hash needs no copy; the
            # pixel facts stay null, as for an image too large to decode.
            log.warning("facts of asset %s: no room for a copy, hash only", asset.id)
            hexdigest = known or await self._streamed_sha256(asset.storage_key)
            return {"content_hash": f"sha256:{hexdigest}"}

    async def _compute_by_ranges(self, asset: Asset, known: str | None) -> dict[str, Any]:
        """A video in a remote store, never copied: it may be larger than the temporary disk
        (a copy that failed for lack of space was retried every poll, filling the disk each
        time). Hashed as it streams, then probed and decoded by ranged reads, as posters are."""
        known = known or await self._streamed_sha256(asset.storage_key)
        reader = RangeReader(
            self.runtime.storage,
            asset.storage_key,
            asset.size,
            asyncio.get_running_loop(),
            self.runtime.settings.storage_timeout_seconds,
        )
        values = await self._compute_from(asset, reader, known)
        if reader.error is not None:  # the store failed a read, not the video
            raise StorageUnavailable()
        return values

    async def _streamed_sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        loop = asyncio.get_running_loop()
        async for chunk in self.runtime.storage.stream(key):
            await loop.run_in_executor(self._executor, digest.update, chunk)
        return digest.hexdigest()

    async def _compute_from(
        self, asset: Asset, source: Path | io.IOBase, known: str | None
    ) -> dict[str, Any]:
        settings = self.runtime.settings
        loop = asyncio.get_running_loop()
        media_type = asset.media_type
        needed = await loop.run_in_executor(
            self._executor,
            facts_memory,
            source,
            media_type,
            asset.mime_type,
            settings.max_image_pixels,
        )
        decode = needed <= settings.render_memory_bytes
        if not decode:
            log.info("facts of asset %s: too large to decode, no pixel facts", asset.id)
            needed = 0
        async with budget_for(self.runtime).reserve(needed):
            return await loop.run_in_executor(
                self._executor,
                lambda: compute(
                    source,
                    media_type=media_type,
                    mime_type=asset.mime_type,
                    known_sha256=known,
                    max_pixels=settings.max_image_pixels,
                    decode=decode,
                ),
            )

    async def _release(self, asset_id: str) -> None:
        """Give a claim back without counting it; the job is free again after a poll."""
        with contextlib.suppress(Exception):  # the database out too: the lease runs out
            await FactJob.filter(asset_id=asset_id, holder=self.holder).update(
                holder=None,
                lease_expires_at=utcnow_ms() + dt.timedelta(seconds=self.poll_seconds),
                attempts=F("attempts") - 1,
            )

    async def _renew_while_running(self, asset_id: str) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            await FactJob.filter(asset_id=asset_id, holder=self.holder).update(
                lease_expires_at=utcnow_ms() + self.lease
            )
