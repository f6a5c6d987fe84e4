"""GraphQL types of export URLs and batch exports."""

from __future__ import annotations

import datetime as dt

import strawberry

from schema.scalars import Long


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
    width: int = strawberry.field(default=0, description="The rendition's pixel width.")
    height: int = strawberry.field(default=0, description="The rendition's pixel height.")
    bytes: Long = strawberry.field(default=0, description="The rendition's size in bytes.")
    quality: int = strawberry.field(
        default=0, description="Encoder quality setting used (100 for lossless outputs)."
    )
    score: float | None = strawberry.field(
        default=None,
        description="SSIMULACRA2 score of the rendition against the resized, unencoded image; null "
        "when no perceptual target was asked.",
    )
    perceptual: str | None = strawberry.field(
        default=None, description="The perceptual target, normalised; null when none."
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
    perceptual: str | None = strawberry.field(
        default=None,
        description="auto, auto:low|medium|high|best or auto:NN (30-95): quality chosen per "
        "image for that SSIMULACRA2 score.",
    )
    formats: list[str] | None = strawberry.field(
        default=None, description="With format AUTO: candidate formats (default AVIF, WEBP, JPEG)."
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
