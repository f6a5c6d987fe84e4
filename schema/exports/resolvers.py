"""exportUrl (query) and createExport (mutation)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import exports
from pixelwand.services.renditions import InlineTransform
from schema.context import require_scope
from schema.exports import arguments as args
from schema.exports.renditions import export_url_type
from schema.exports.types import CreateExportInput, ExportLink, ExportUrl


@strawberry.type
class ExportQueries:
    @strawberry.field(
        description="A short-lived signed URL to a transformed copy of one image (of a "
        "video: a poster frame, see posterAt): a preset or inline parameters (not both)."
    )
    async def export_url(
        self,
        info: strawberry.Info,
        asset_id: Annotated[
            strawberry.ID, strawberry.argument(description="An image's or a video's id.")
        ],
        preset: args.Preset = None,
        format: args.Format = None,
        quality: args.Quality = None,
        max_width: args.MaxWidth = None,
        max_height: args.MaxHeight = None,
        preserve_aspect: args.PreserveAspect = None,
        ttl: args.Ttl = None,
        gravity: args.Gravity = None,
        poster_at: args.PosterAt = None,
        perceptual: args.Perceptual = None,
        formats: args.Formats = None,
    ) -> ExportUrl:
        principal = require_scope(info, "read")
        result = await info.context.runtime.renditions.export_url(
            principal.org_id,
            asset_id,
            preset=preset,
            inline=InlineTransform(
                format,
                quality,
                max_width,
                max_height,
                preserve_aspect,
                gravity,
                perceptual,
                formats,
            ),
            ttl=ttl,
            poster_at=poster_at,
        )
        return export_url_type(result)


async def create_export(
    info: strawberry.Info,
    input: Annotated[CreateExportInput, strawberry.argument(description="The batch.")],
) -> ExportLink:
    principal = require_scope(info, "write")
    c = input.config
    config = (
        exports.parse_config(
            c.format,
            c.quality,
            c.max_width,
            c.max_height,
            c.preserve_aspect,
            c.rename_on_export,
            gravity=c.gravity,
            perceptual=c.perceptual,
            formats=c.formats,
        )
        if c is not None
        else exports.parse_config()
    )
    job = await exports.create_job(principal.org_id, list(input.asset_ids), config)
    runtime = info.context.runtime
    return ExportLink(
        id=strawberry.ID(job.id),
        url=exports.signed_link(runtime.settings, job),
        expires_at=job.expires_at,
        asset_count=len(job.asset_ids),
    )


@strawberry.type
class ExportMutations:
    create_export = strawberry.mutation(
        resolver=create_export,
        description="Validate a batch export of up to 500 assets and return a short-lived "
        "signed URL whose GET streams the ZIP.",
    )
