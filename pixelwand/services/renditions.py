"""Export URLs: a transformed copy of one image, rendered once per (asset, parameters).

A rendition is stored in the object store and recorded in the database; later requests with
the same normalized parameters reuse it (`cached: true`). Concurrent identical requests in
one process share one render (single flight); across processes the unique (asset, params)
row and the deterministic storage key make a duplicate render harmless.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from tortoise.exceptions import IntegrityError

from pixelwand.errors import BadRequest
from pixelwand.imaging.params import (
    TransformParams,
    extension_for,
    mime_for,
    params_key,
    parse_transform,
    resolve_format,
)
from pixelwand.imaging.perceptual import Optimised
from pixelwand.imaging.video import PosterAt, parse_poster_at
from pixelwand.models import Rendition
from pixelwand.runtime import Runtime
from pixelwand.services.assets import get_asset
from pixelwand.services.posters import render_poster
from pixelwand.services.presets import get_preset
from pixelwand.services.records import AssetRecord
from pixelwand.services.rendering import render_within_budget
from pixelwand.services.rendition_facts import (
    fixed_quality,
    perceptual_cache_key,
    preset_params,
    rendition_facts,
)
from pixelwand.storage.keys import rendition_key

MIN_TTL = 60
MAX_TTL = 86_400
DEFAULT_TTL = 3600
# Rendition rows a process remembers (a few hundred bytes each).
KNOWN_RENDITIONS = 10_000
DEFAULT_POSTER = PosterAt(percent=25.0)


@dataclasses.dataclass(frozen=True)
class ExportUrl:
    asset_id: str
    url: str
    format: str
    ttl_seconds: int
    expires_at: dt.datetime
    cached: bool
    # What a rendition reports (docs/perceptual.md).
    width: int = 0
    height: int = 0
    bytes: int = 0
    quality: int = 0  # encoder setting used (100 for lossless outputs)
    score: float | None = None  # SSIMULACRA2 reached; None without a target
    perceptual: str | None = None  # normalised target; None when none


@dataclasses.dataclass(frozen=True)
class InlineTransform:
    """Export parameters as the client sent them (None: not given)."""

    format: Any = None
    quality: Any = None
    max_width: Any = None
    max_height: Any = None
    preserve_aspect: Any = None
    gravity: Any = None
    perceptual: Any = None
    formats: Any = None

    def given(self) -> bool:
        return not (
            self.format is None
            and self.quality is None
            and self.max_width is None
            and self.max_height is None
            and self.preserve_aspect is None
            and self.gravity is None
            and self.perceptual is None
            and self.formats is None
        )


def check_ttl(ttl: int | None) -> int:
    if ttl is None:
        return DEFAULT_TTL
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL <= ttl <= MAX_TTL:
        raise BadRequest(f"ttl must be between {MIN_TTL} and {MAX_TTL} seconds")
    return ttl


def _auto_key(params: TransformParams) -> str:
    # JPEG's key covers quality, which an opaque source (rendered as JPEG) depends on.
    digest = hashlib.sha256(("auto|" + params_key(params, "JPEG")).encode()).hexdigest()
    return digest[:32]


def rendition_cache_key(params: TransformParams, source_mime: str) -> str:
    if params.perceptual is not None:
        return perceptual_cache_key(params, source_mime, rendition_cache_key)
    if params.format is None and source_mime in ("image/gif", "image/tiff"):
        return _auto_key(params)
    return params_key(params, resolve_format(params, source_mime, has_alpha=False))


def focal_used(params: TransformParams, asset: AssetRecord) -> tuple[float, float] | None:
    """The point a `gravity=focal` crop keeps (rounded as keyed); None for other gravities
    and for assets without a focal point yet (their crop keeps the centre)."""
    if params.gravity != "focal" or asset.focal_point is None:
        return None
    return (round(asset.focal_point.x, 4), round(asset.focal_point.y, 4))


def _extended_key(key: str, params: TransformParams, focal: tuple[float, float] | None) -> str:
    """`key` extended with what else decides the pixels: gravity (and the focal point it
    used, so a moved focal point makes a new rendition). Centre crops keep their old key."""
    if params.gravity == "center":
        return key
    extra = f"{key}|gravity={params.gravity}"
    if params.gravity == "focal":
        extra += "|focal=" + ("-" if focal is None else f"{focal[0]:.4f},{focal[1]:.4f}")
    return hashlib.sha256(extra.encode()).hexdigest()[:32]


def rendition_key_for(params: TransformParams, asset: AssetRecord) -> str:
    """The key an image's rendition for `params` is stored under."""
    key = rendition_cache_key(params, asset.mime_type)
    return _extended_key(key, params, focal_used(params, asset))


def poster_cache_key(
    params: TransformParams,
    at: PosterAt,
    focal: tuple[float, float] | None,
    *,
    duration_known: bool = True,
) -> str:
    """A poster's key. Made before the video's facts are in (`duration_known` False), it
    differs: a file whose headers carry no duration gets its frame from the facts' duration
    (imaging/video.py), so what was rendered without it must not stand for what is rendered
    with it (a percentage's frame, a past-the-end refusal)."""
    base = params_key(params, params.format or "JPEG")
    prefix = "poster" if duration_known else "poster-no-duration"
    key = hashlib.sha256(f"{prefix}|{at.text}|{base}".encode()).hexdigest()[:32]
    return _extended_key(key, params, focal)


async def resolve_params(
    org_id: str, preset: str | None, inline: InlineTransform, *, poster_given: bool = False
) -> TransformParams:
    if preset is not None and inline.given():
        raise BadRequest("give either preset or inline parameters, not both")
    if preset is None and not inline.given() and not poster_given:
        raise BadRequest(
            "give a preset or at least one of format, quality, maxWidth, maxHeight"
            " (or posterAt, for a video)"
        )
    if preset is not None:
        p = await get_preset(org_id, preset, "preset")
        return preset_params(
            p,
            TransformParams(
                p.format, p.quality, p.max_width, p.max_height, p.preserve_aspect, p.gravity
            ),
        )
    return parse_transform(
        inline.format,
        inline.quality,
        inline.max_width,
        inline.max_height,
        inline.preserve_aspect,
        inline.gravity,
        inline.perceptual,
        inline.formats,
    )


class RenditionService:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._inflight: dict[tuple[str, str], asyncio.Future[tuple[Rendition, bool]]] = {}
        self._known: collections.OrderedDict[tuple[str, str], Rendition] = collections.OrderedDict()

    def _remember(self, rendition: Rendition) -> None:
        self._known[(rendition.asset_id, rendition.params_key)] = rendition
        if len(self._known) > KNOWN_RENDITIONS:
            self._known.popitem(last=False)

    async def export_url(
        self,
        org_id: str,
        asset_id: str,
        *,
        preset: str | None,
        inline: InlineTransform,
        ttl: int | None,
        poster_at: str | None = None,
    ) -> ExportUrl:
        ttl_ = check_ttl(ttl)
        at = parse_poster_at(poster_at)
        params = await resolve_params(org_id, preset, inline, poster_given=at is not None)
        asset = await get_asset(org_id, asset_id)
        return await self.export_url_for(asset, params, ttl_, at)

    async def export_url_for(
        self,
        asset: AssetRecord,
        params: TransformParams,
        ttl: int | None,
        at: PosterAt | None = None,
    ) -> ExportUrl:
        """The signed URL of `asset`'s rendition for `params` (rendered first if needed): a
        poster frame for a video (at `at`, default 25%), the image itself otherwise."""
        ttl_ = check_ttl(ttl)
        if asset.media_type == "VIDEO":
            if params.perceptual is not None:
                raise BadRequest(
                    "perceptual targets (perceptual, quality auto, format AUTO) apply to"
                    " images; give a poster a format and a numeric quality"
                )
            rendition, cached = await self.poster(asset, params, at or DEFAULT_POSTER)
        else:
            if at is not None:
                raise BadRequest("posterAt applies to videos only")
            rendition, cached = await self.rendition(asset, params)
        url = await self.runtime.storage.presign_get(
            rendition.storage_key, ttl_, content_type=mime_for(rendition.format)
        )
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl_)
        return ExportUrl(
            asset_id=asset.id,
            url=url,
            format=rendition.format,
            ttl_seconds=ttl_,
            expires_at=expires.replace(microsecond=expires.microsecond // 1000 * 1000),
            cached=cached,
            **rendition_facts(rendition, params),
        )

    async def prefetch(self, pairs: list[tuple[str, str]]) -> list[bool]:
        """Load the stored renditions of many (asset id, key) pairs in one query, so that
        `rendition` finds them in memory (Asset.rendition on a page); whether each exists."""
        missing = [pair for pair in pairs if pair not in self._known]
        if missing:
            rows = await Rendition.filter(
                asset_id__in=sorted({a for a, _ in missing}),
                params_key__in=sorted({k for _, k in missing}),
            )
            for row in rows:
                self._remember(row)
        return [pair in self._known for pair in pairs]

    async def rendition(
        self, asset: AssetRecord, params: TransformParams
    ) -> tuple[Rendition, bool]:
        """(rendition, cached): the stored rendition, rendering it first if there is none.

        Rendition rows never change, and are removed only after their asset is deleted
        (which the caller has just checked it is not), so a process may remember them.
        """
        focal = focal_used(params, asset)
        key = rendition_key_for(params, asset)
        return await self._stored(
            asset, key, params, lambda: self._render_image(asset, params, focal)
        )

    async def poster(
        self, asset: AssetRecord, params: TransformParams, at: PosterAt
    ) -> tuple[Rendition, bool]:
        """(rendition, cached) of a video's poster frame at `at`."""
        focal = focal_used(params, asset)
        key = poster_cache_key(params, at, focal, duration_known=asset.duration_seconds is not None)
        return await self._stored(
            asset, key, params, lambda: self._poster(asset, params, at, focal)
        )

    async def _poster(
        self,
        asset: AssetRecord,
        params: TransformParams,
        at: PosterAt,
        focal: tuple[float, float] | None,
    ) -> Optimised:
        rendered = await render_poster(self.runtime, asset, params, at, focal)
        return Optimised(rendered, fixed_quality(rendered, params), None, 1)

    async def _stored(
        self,
        asset: AssetRecord,
        key: str,
        params: TransformParams,
        produce: Callable[[], Awaitable[Optimised]],
    ) -> tuple[Rendition, bool]:
        known = self._known.get((asset.id, key))
        if known is not None:
            return known, True
        existing = await Rendition.filter(asset_id=asset.id, params_key=key).first()
        if existing is not None:
            self._remember(existing)
            return existing, True
        flight = (asset.id, key)
        pending = self._inflight.get(flight)
        if pending is not None:
            rendition, _ = await asyncio.shield(pending)
            return rendition, True
        future: asyncio.Future[tuple[Rendition, bool]] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        try:
            result = await self._store(asset, key, params, await produce())
            self._remember(result[0])
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._inflight[flight]

    async def _render_image(
        self, asset: AssetRecord, params: TransformParams, focal: tuple[float, float] | None
    ) -> Optimised:
        runtime = self.runtime
        async with runtime.storage.local_copy(asset.storage_key) as path:
            return await render_within_budget(runtime, path, params, asset.mime_type, focal)

    async def _store(
        self, asset: AssetRecord, key: str, params: TransformParams, outcome: Optimised
    ) -> tuple[Rendition, bool]:
        runtime = self.runtime
        rendered = outcome.rendered
        storage_key = rendition_key(
            asset.organization_id, asset.id, key, extension_for(rendered.format)
        )
        await runtime.storage.put(storage_key, rendered.data, rendered.mime_type)
        try:
            row = await Rendition.create(
                asset_id=asset.id,
                params_key=key,
                format=rendered.format,
                storage_key=storage_key,
                size=len(rendered.data),
                width=rendered.width,
                height=rendered.height,
                etag=hashlib.sha256(rendered.data).hexdigest()[:32],
                quality=outcome.quality,
                score=outcome.score,
                perceptual=params.perceptual,
            )
        except IntegrityError:
            # Another process stored the same rendition under the same key meanwhile.
            row = await Rendition.get(asset_id=asset.id, params_key=key)
            return row, True
        return row, False
