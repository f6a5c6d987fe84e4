"""`Asset.rendition(...)`: exportUrl's arguments on an asset, for a page of thumbnails.

One `assets { items { rendition(maxWidth: 300) { url } } }` costs, beyond the listing:
one preset lookup per distinct argument set, one query for the page's stored renditions
(a DataLoader), and renders only for renditions that do not exist yet, each through the
bounded image pool and the service's single flight. A rendition this process has seen costs
no query at all. An item that cannot be rendered (a video, a corrupt file) answers null
with its error; the rest of the page stands.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

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
from schema.exports.types import ExportUrl

PERCEPTUAL_ARGUMENT = strawberry.argument(
    description="Perceptual target: auto, auto:low|medium|high|best or auto:NN (30-95); "
    "quality is then chosen per image for that SSIMULACRA2 score."
)
FORMATS_ARGUMENT = strawberry.argument(
    description="With format AUTO: candidate formats (default AVIF, WEBP, JPEG; PNG may be "
    "listed); the smallest output meeting the target wins."
)


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
    preset: Annotated[str | None, strawberry.argument(description="A preset's name.")] = None,
    format: Annotated[
        str | None, strawberry.argument(description="JPEG, PNG, WEBP, AVIF or AUTO.")
    ] = None,
    quality: Annotated[int | None, strawberry.argument(description="1-100.")] = None,
    max_width: Annotated[int | None, strawberry.argument(description="1-16384.")] = None,
    max_height: Annotated[int | None, strawberry.argument(description="1-16384.")] = None,
    preserve_aspect: Annotated[
        bool | None, strawberry.argument(description="Default true.")
    ] = None,
    ttl: Annotated[
        int | None, strawberry.argument(description="Seconds, 60-86400; default 3600.")
    ] = None,
    perceptual: Annotated[str | None, PERCEPTUAL_ARGUMENT] = None,
    formats: Annotated[list[str] | None, FORMATS_ARGUMENT] = None,
    gravity: Annotated[
        str | None,
        strawberry.argument(
            description="center (default), focal, attention or entropy; all but center need "
            "preserveAspect false."
        ),
    ] = None,
    poster_at: Annotated[
        str | None,
        strawberry.argument(
            description='Videos: the poster frame\'s time, seconds ("2.5") or a percentage '
            '("25%", the default).'
        ),
    ] = None,
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
