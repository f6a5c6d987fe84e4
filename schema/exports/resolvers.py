"""exportUrl (query) and createExport (mutation)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import exports
from pixelwand.services.renditions import InlineTransform
from schema.context import require_scope
from schema.exports.renditions import FORMATS_ARGUMENT, PERCEPTUAL_ARGUMENT, export_url_type
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
        preset: Annotated[str | None, strawberry.argument(description="A preset's name.")] = None,
        format: Annotated[
            str | None, strawberry.argument(description="JPEG, PNG, WEBP or AVIF.")
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
        gravity: Annotated[
            str | None,
            strawberry.argument(
                description="center (default), focal, attention or entropy: where a crop "
                "keeps the picture; all but center need preserveAspect false."
            ),
        ] = None,
        poster_at: Annotated[
            str | None,
            strawberry.argument(
                description='Videos only: the poster frame\'s time, seconds ("2.5") or a '
                'percentage ("25%", the default); the keyframe at or before it is used.'
            ),
        ] = None,
        perceptual: Annotated[str | None, PERCEPTUAL_ARGUMENT] = None,
        formats: Annotated[list[str] | None, FORMATS_ARGUMENT] = None,
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
