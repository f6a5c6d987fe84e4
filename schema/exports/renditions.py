"""`Asset.rendition(...)`: exportUrl's arguments on an asset, for a page of thumbnails.

One `assets { items { rendition(maxWidth: 300) { url } } }` costs, beyond the listing:
one preset lookup per distinct argument set, one query for the page's stored renditions
(a DataLoader), and renders only for renditions that do not exist yet, each through the
bounded image pool and the service's single flight. A rendition this process has seen costs
no query at all. A video's rendition is its poster frame (`posterAt`, default 25%). An item
that cannot be rendered (a corrupt file, an undecodable video) answers null with its
error; the rest of the page stands.
"""

from __future__ import annotations

import asyncio
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader

from pixelwand.imaging.video import parse_poster_at
from pixelwand.services.renditions import (
    ExportUrl as ExportUrlResult,
)
from pixelwand.services.renditions import (
    InlineTransform,
    rendition_key_for,
    resolve_params,
)
from schema.context import require_scope
from schema.exports import arguments as args
from schema.exports.types import ExportUrl


def export_url_type(result: ExportUrlResult) -> ExportUrl:
    return ExportUrl(
        asset_id=strawberry.ID(result.asset_id),
        url=result.url,
        format=result.format,
        ttl_seconds=result.ttl_seconds,
        expires_at=result.expires_at,
        cached=result.cached,
        width=result.width,
        height=result.height,
        bytes=result.bytes,  # type: ignore[arg-type]
        quality=result.quality,
        score=result.score,
        perceptual=result.perceptual,
    )


async def asset_rendition(
    root: Any,
    info: strawberry.Info,
    preset: args.Preset = None,
    format: args.Format = None,
    quality: args.Quality = None,
    max_width: args.MaxWidth = None,
    max_height: args.MaxHeight = None,
    preserve_aspect: args.PreserveAspect = None,
    ttl: args.Ttl = None,
    perceptual: args.Perceptual = None,
    formats: args.Formats = None,
    gravity: args.Gravity = None,
    poster_at: args.PosterAt = None,
) -> ExportUrl | None:
    principal = require_scope(info, "read")
    inline = InlineTransform(
        format=format,
        quality=quality,
        max_width=max_width,
        max_height=max_height,
        preserve_aspect=preserve_aspect,
        gravity=gravity,
        perceptual=perceptual,
        formats=formats,
    )
    at = parse_poster_at(poster_at)
    context = info.context
    memo: dict[Any, asyncio.Future[Any]] = context.__dict__.setdefault("rendition_params", {})
    memo_key = (preset, repr(inline), at is not None)
    pending = memo.get(memo_key)
    if pending is None:
        pending = asyncio.ensure_future(
            resolve_params(principal.org_id, preset, inline, poster_given=at is not None)
        )
        memo[memo_key] = pending
    params = await pending
    service = context.runtime.renditions
    if root.media_type == "IMAGE":
        loader = context.__dict__.get("rendition_loader")
        if loader is None:
            loader = context.__dict__["rendition_loader"] = DataLoader(service.prefetch)
        await loader.load((root.id, rendition_key_for(params, root)))
    result = await service.export_url_for(root, params, ttl, at)
    return export_url_type(result)
