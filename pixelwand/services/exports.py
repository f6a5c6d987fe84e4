"""Batch exports: a ZIP of up to 500 assets, streamed while it is produced.

Images render in parallel in the image pool, a bounded window ahead of the entry being
written, while entries are written in request order; memory holds at most that window of
renditions. Videos go in as their original bytes, streamed chunk by chunk. An image that
fails to render is skipped and named in a final errors.txt. The ZIP framing (ZIP64 where
needed) is stream-zip's (see zip_stream.py); renditions are already compressed, so they are
stored, not deflated.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import re
import unicodedata
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlencode

from stream_zip import NO_COMPRESSION_64, ZIP_AUTO

from pixelwand.errors import BadRequest, Forbidden, NotFound, PixelWandError
from pixelwand.ids import is_valid_id
from pixelwand.imaging.params import TransformParams, extension_for, parse_transform
from pixelwand.imaging.pipeline import Rendered
from pixelwand.models import Asset, ExportJob
from pixelwand.runtime import Runtime
from pixelwand.services.assets import record
from pixelwand.services.records import ASSET_COLUMNS, AssetRecord, utcnow_ms
from pixelwand.services.rendering import render_within_budget
from pixelwand.services.renditions import focal_used
from pixelwand.services.zip_stream import zip_stream
from pixelwand.signing import Signer

MAX_ASSETS = 500
LINK_SECONDS = 900  # a createExport link is short-lived: 15 minutes
ERRORS_ENTRY = "errors.txt"

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    params: TransformParams
    rename_on_export: bool = False

    def to_json(self) -> dict[str, Any]:
        p = self.params
        return {
            "format": p.format,
            "quality": None if p.format == "AUTO" else p.quality,
            "maxWidth": p.max_width,
            "maxHeight": p.max_height,
            "preserveAspect": p.preserve_aspect,
            "renameOnExport": self.rename_on_export,
            "gravity": p.gravity,
            **(
                {"perceptual": p.perceptual, "formats": list(p.formats) if p.formats else None}
                if p.perceptual is not None
                else {}
            ),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportConfig:
        return parse_config(**{_snake(k): v for k, v in data.items()})


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def parse_config(
    format: Any = None,
    quality: Any = None,
    max_width: Any = None,
    max_height: Any = None,
    preserve_aspect: Any = None,
    rename_on_export: Any = None,
    gravity: Any = None,
    perceptual: Any = None,
    formats: Any = None,
) -> ExportConfig:
    """Defaults: the source's format, quality 85, no resize, preserveAspect, original names,
    centre crops."""
    if rename_on_export is not None and not isinstance(rename_on_export, bool):
        raise BadRequest("renameOnExport must be true or false")
    params = parse_transform(
        format, quality, max_width, max_height, preserve_aspect, gravity, perceptual, formats
    )
    return ExportConfig(params=params, rename_on_export=bool(rename_on_export))


async def check_assets(org_id: str, asset_ids: Any) -> list[AssetRecord]:
    """The assets, in request order, once every id is shown to be a live asset of the org."""
    if not isinstance(asset_ids, list) or not all(isinstance(i, str) for i in asset_ids):
        raise BadRequest("assetIds must be a list of asset ids")
    if not asset_ids:
        raise BadRequest("assetIds must name at least one asset")
    if len(asset_ids) > MAX_ASSETS:
        raise BadRequest(f"assetIds may name at most {MAX_ASSETS} assets per export")
    seen: set[str] = set()
    for asset_id in asset_ids:
        if asset_id in seen:
            raise BadRequest(f"assetIds must be distinct: {asset_id} appears twice")
        seen.add(asset_id)
    valid = [i for i in asset_ids if is_valid_id(i)]
    rows = await Asset.filter(id__in=valid, deleted_at=None).values_list(*ASSET_COLUMNS)
    found = {r[0]: record(r) for r in rows}
    out = []
    for asset_id in asset_ids:
        asset = found.get(asset_id)
        if asset is None:
            raise NotFound(f"asset {asset_id} not found")
        if asset.organization_id != org_id:
            raise Forbidden(f"asset {asset_id} belongs to another organization")
        out.append(asset)
    return out


async def create_job(org_id: str, asset_ids: Any, config: ExportConfig) -> ExportJob:
    """Validate an export and record it, so that a signed link can stream it later."""
    assets = await check_assets(org_id, asset_ids)
    now = utcnow_ms()
    return await ExportJob.create(
        organization_id=org_id,
        asset_ids=[a.id for a in assets],
        config=config.to_json(),
        created_at=now,
        expires_at=now + dt.timedelta(seconds=LINK_SECONDS),
    )


def _signer(settings: Any) -> Signer:
    return Signer(settings.secret_key, "export")


def signed_link(settings: Any, job: ExportJob) -> str:
    """{base}/exports/{id}?exp=…&sig=…, valid until the job expires."""
    expires = str(int(job.expires_at.timestamp()))
    sig = _signer(settings).sign({"id": job.id, "exp": expires})
    return f"{settings.base_url()}/exports/{job.id}?{urlencode({'exp': expires, 'sig': sig})}"


async def job_for_link(settings: Any, job_id: str, exp: str, sig: str) -> ExportJob:
    """The job a link names (SignatureError when altered or expired, NotFound when gone)."""
    _signer(settings).verify({"id": job_id, "exp": exp}, sig, exp)
    job = await ExportJob.filter(id=job_id).first()
    if job is None:
        raise NotFound(f"export {job_id} not found")
    return job


async def job_assets(job: ExportJob) -> tuple[list[AssetRecord], list[str]]:
    """(assets still live, ids deleted since the export was created), in request order."""
    rows = await Asset.filter(
        id__in=job.asset_ids, organization_id=job.organization_id, deleted_at=None
    ).values_list(*ASSET_COLUMNS)
    found = {r[0]: record(r) for r in rows}
    live = [found[i] for i in job.asset_ids if i in found]
    return live, [i for i in job.asset_ids if i not in found]


# --- entry names ------------------------------------------------------------------------


def safe_basename(name: str, *, max_length: int = 200) -> str:
    """The last path segment, without control or reserved characters; never empty."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = _UNSAFE.sub("_", base).strip(" .")
    if len(base) > max_length:
        stem, dot, ext = base.rpartition(".")
        base = (
            stem[: max_length - len(ext) - 1] + "." + ext
            if dot and len(ext) <= 10
            else base[:max_length]
        )
    return base or "file"


def with_extension(name: str, extension: str) -> str:
    stem, dot, _ = name.rpartition(".")
    return f"{stem if dot and stem else name}.{extension}"


class EntryNames:
    """Hands out unique entry names: `hero.webp`, then `hero (2).webp` (case-insensitively)."""

    def __init__(self, reserved: tuple[str, ...] = (ERRORS_ENTRY,)) -> None:
        self._taken = {n.lower() for n in reserved}

    def allocate(self, name: str) -> str:
        candidate = name
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, ext = name, ""
        n = 2
        while candidate.lower() in self._taken:
            candidate = f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})"
            n += 1
        self._taken.add(candidate.lower())
        return candidate


# --- the archive ------------------------------------------------------------------------


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class ExportStreamer:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def _render(self, asset: AssetRecord, params: TransformParams) -> Rendered:
        runtime = self.runtime
        async with runtime.storage.local_copy(asset.storage_key) as path:
            outcome = await render_within_budget(
                runtime, path, params, asset.mime_type, focal_used(params, asset)
            )
        return outcome.rendered

    def archive(
        self, assets: list[AssetRecord], config: ExportConfig, missing: Sequence[str] = ()
    ) -> AsyncIterator[bytes]:
        return zip_stream(self._members(assets, config, list(missing)))

    async def _members(
        self, assets: list[AssetRecord], config: ExportConfig, missing: list[str]
    ) -> AsyncIterator[tuple[str, dt.datetime, int, Any, AsyncIterator[bytes]]]:
        names = EntryNames()
        errors = [f"{asset_id}: deleted after the export was created" for asset_id in missing]
        window = max(2, 2 * self.runtime.settings.image_workers)
        images = [a for a in assets if a.media_type == "IMAGE"]
        renders: collections.deque[asyncio.Task[Rendered]] = collections.deque()
        next_image = 0

        def schedule() -> None:
            nonlocal next_image
            while len(renders) < window and next_image < len(images):
                renders.append(asyncio.create_task(self._render(images[next_image], config.params)))
                next_image += 1

        try:
            for asset in assets:
                base = safe_basename(asset.name if config.rename_on_export else asset.original_name)
                modified = asset.uploaded_at
                if asset.media_type != "IMAGE":
                    name = names.allocate(safe_basename(asset.original_name))
                    method = ZIP_AUTO(asset.size, level=0)  # already compressed: store blocks
                    yield (
                        name,
                        modified,
                        0o644,
                        method,
                        self.runtime.storage.stream(asset.storage_key),
                    )
                    continue
                schedule()
                task = renders.popleft()
                schedule()
                try:
                    rendered = await task
                except PixelWandError as exc:
                    errors.append(f"{base} ({asset.id}): {exc.message}")
                    continue
                name = names.allocate(with_extension(base, extension_for(rendered.format)))
                data = rendered.data
                method = NO_COMPRESSION_64(len(data), zlib.crc32(data))
                yield name, modified, 0o644, method, _one(data)
            if errors:
                text = ("Not exported:\n" + "\n".join(errors) + "\n").encode()
                yield ERRORS_ENTRY, utcnow_ms(), 0o644, ZIP_AUTO(len(text)), _one(text)
        finally:
            for task in renders:
                task.cancel()
