"""GraphQL types of export URLs and batch exports."""

from __future__ import annotations

import datetime as dt

import strawberry


@strawberry.type(description="A short-lived signed URL to a transformed copy of one image.")
class ExportUrl:
    asset_id: strawberry.ID = strawberry.field(description="The exported asset.")
    url: str = strawberry.field(description="Signed, expiring GET of the rendition.")
    format: str = strawberry.field(description="JPEG, PNG, WEBP or AVIF.")
    ttl_seconds: int = strawberry.field(description="How long the URL is valid.")
    expires_at: dt.datetime = strawberry.field(description="When the URL stops working.")
    cached: bool = strawberry.field(
        description="True when the rendition already existed and was reused."
    )


@strawberry.input(description="How every image of a batch export is written.")
class ExportConfigInput:
    format: str | None = strawberry.field(
        default=None, description="JPEG, PNG, WEBP or AVIF (any case); default: the source's own."
    )
    quality: int | None = strawberry.field(default=None, description="1-100; default 85.")
    max_width: int | None = strawberry.field(default=None, description="1-16384; default none.")
    max_height: int | None = strawberry.field(default=None, description="1-16384; default none.")
    preserve_aspect: bool | None = strawberry.field(
        default=None, description="Default true; false crops to exactly maxWidth x maxHeight."
    )
    rename_on_export: bool | None = strawberry.field(
        default=None,
        description="true: entries take the asset's current name; false (default): its "
        "originalName. The extension always becomes the output format's.",
    )
    gravity: str | None = strawberry.field(
        default=None,
        description="Where crops keep the picture: center (default), focal, attention or "
        "entropy; all but center need preserveAspect false.",
    )


@strawberry.input(description="A batch export of up to 500 distinct assets.")
class CreateExportInput:
    asset_ids: list[strawberry.ID] = strawberry.field(description="1-500 distinct asset ids.")
    config: ExportConfigInput | None = strawberry.field(
        default=None, description="Output settings; defaults apply when omitted."
    )


@strawberry.type(description="A signed link whose GET streams the ZIP archive.")
class ExportLink:
    id: strawberry.ID = strawberry.field(description="The export's id.")
    url: str = strawberry.field(description="Signed GET that streams the archive.")
    expires_at: dt.datetime = strawberry.field(description="When the link stops working.")
    asset_count: int = strawberry.field(description="How many assets the archive holds.")
