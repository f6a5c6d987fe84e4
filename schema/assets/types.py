"""GraphQL types of assets and their pages."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from schema.exports.renditions import asset_rendition
from schema.exports.types import ExportUrl
from schema.scalars import Long

if TYPE_CHECKING:
    from schema.collections.types import Collection


@strawberry.enum(
    description="What kind of media an asset holds: IMAGE (JPEG, PNG, WebP, GIF, AVIF, TIFF) "
    "or VIDEO (MP4, QuickTime, WebM)."
)
class MediaType(enum.StrEnum):
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"


@strawberry.type(
    description="Where an image's subject is, as fractions of its upright width and height."
)
class FocalPoint:
    x: float = strawberry.field(description="0 (left edge) to 1 (right edge).")
    y: float = strawberry.field(description="0 (top edge) to 1 (bottom edge).")
    source: str = strawberry.field(
        description='"auto" (found by libvips attention after upload) or "manual" (set '
        "through updateAsset / PATCH)."
    )


@strawberry.type(description="An image or video stored in the workspace.")
class Asset:
    id: strawberry.ID = strawberry.field(description="cuid-style id: c + 24 characters.")
    name: str = strawberry.field(description="Display name (defaults to originalName).")
    original_name: str = strawberry.field(description="The uploaded file's name.")
    size: Long = strawberry.field(description="Size of the original file in bytes.")
    mime_type: str = strawberry.field(description="Mime type, checked against the bytes.")
    media_type: MediaType = strawberry.field(description="IMAGE or VIDEO.")
    storage_key: str = strawberry.field(
        description="Object key of the original: orgs/<orgId>/<yyyy>/<mm>/<uuid>-<name>."
    )
    tags: list[str] = strawberry.field(description="Tags, in the order they were given.")
    collection_id: strawberry.ID | None = strawberry.field(
        description="The collection holding the asset, if any."
    )
    location_x: float = strawberry.field(description="Horizontal position on the canvas.")
    location_y: float = strawberry.field(description="Vertical position on the canvas.")
    width: int | None = strawberry.field(
        description="Pixel width: images from the header; videos the upright poster frame's,"
        " null until computed."
    )
    height: int | None = strawberry.field(
        description="Pixel height: images from the header; videos the upright poster frame's,"
        " null until computed."
    )
    uploaded_at: dt.datetime = strawberry.field(description="When the upload was finalized.")
    content_hash: str | None = strawberry.field(
        description='"sha256:<hex>" of the original bytes; null until computed after upload.'
    )
    thumbhash: str | None = strawberry.field(
        description="Images: ThumbHash placeholder (standard base64); null until computed."
    )
    blurhash: str | None = strawberry.field(
        description="Images: BlurHash placeholder (base83, 4x3 components); null until computed."
    )
    dominant_color: str | None = strawberry.field(
        description="Images: the dominant colour, #rrggbb; null until computed."
    )
    duration_seconds: float | None = strawberry.field(
        description="Videos: duration in seconds; null until computed."
    )
    video_codec: str | None = strawberry.field(
        description="Videos: FFmpeg's name of the video codec (h264, hevc, vp9, av1...)."
    )
    frame_rate: float | None = strawberry.field(
        description="Videos: average frames per second; null until computed."
    )
    focal_point: FocalPoint | None = strawberry.field(
        description="The manual focal point if set, else the automatic one (images and "
        "video posters); null until computed. Used by gravity=focal."
    )

    @strawberry.field(description="The collection holding the asset (batched per request).")
    async def collection(
        self, info: strawberry.Info
    ) -> Annotated[Collection, strawberry.lazy("schema.collections.types")] | None:
        if self.collection_id is None:
            return None
        return await info.context.loaders.collection.load(self.collection_id)

    @strawberry.field(
        description="A signed, expiring GET of the original file (the way to fetch a video)."
    )
    async def original_url(
        self,
        info: strawberry.Info,
        ttl: Annotated[
            int | None, strawberry.argument(description="Seconds, 60-86400; default 3600.")
        ] = None,
    ) -> str:
        from pixelwand.services.renditions import check_ttl

        return await info.context.runtime.storage.presign_get(
            self.storage_key,
            check_ttl(ttl),
            content_type=self.mime_type,
            filename=self.original_name,
        )

    rendition: ExportUrl | None = strawberry.field(
        resolver=asset_rendition,
        description="exportUrl's signed URL for this asset (same arguments, same rules): one "
        "query fetches a page of thumbnails. Null, with an error, when this asset cannot be "
        "rendered (a corrupt file, an undecodable video); a video's is its poster frame.",
    )


@strawberry.type(description="One page of assets, newest first.")
class AssetPage:
    items: list[Asset] = strawberry.field(description="The assets on this page.")
    page: int = strawberry.field(description="This page's number, from 1.")
    page_size: int = strawberry.field(description="Assets per page (1-200).")
    total: int = strawberry.field(description="Assets matching the filters, on all pages.")
    total_pages: int = strawberry.field(description="ceil(total / pageSize); 0 when empty.")


@strawberry.type(description="Where and how to PUT the file's bytes.")
class PresignedUpload:
    upload_url: str = strawberry.field(description="Presigned URL to PUT the raw bytes to.")
    method: str = strawberry.field(description="Always PUT.")
    headers: strawberry.scalars.JSON = strawberry.field(
        description="Headers the PUT must carry (Content-Type as declared)."
    )
    storage_key: str = strawberry.field(description="Pass this to finalizeUpload.")
    expires_at: dt.datetime = strawberry.field(description="The URL is refused after this.")


@strawberry.type(description="The asset a finalized upload became.")
class FinalizeUploadResult:
    asset: Asset = strawberry.field(description="The asset row.")
    created: bool = strawberry.field(
        description="False when this storageKey had already been finalized."
    )


@strawberry.type(description="The outcome of deleteAsset.")
class DeleteAssetResult:
    id: strawberry.ID = strawberry.field(description="The deleted asset's id.")
    deleted: bool = strawberry.field(description="Always true.")
