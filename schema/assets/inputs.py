"""GraphQL input types of the asset mutations."""

from __future__ import annotations

import strawberry

from schema.scalars import Long


@strawberry.input(description="What the client is about to upload.")
class PresignUploadInput:
    original_name: str = strawberry.field(description="The file's name.")
    mime_type: str = strawberry.field(description="One of the accepted image/video types.")
    size: Long = strawberry.field(description="Exact size in bytes.")


@strawberry.input(description="Turn an uploaded object into an asset.")
class FinalizeUploadInput:
    original_name: str = strawberry.field(description="The file's name, as at presign.")
    mime_type: str = strawberry.field(description="The mime type, as at presign.")
    size: Long = strawberry.field(description="Exact size in bytes, as at presign.")
    storage_key: str = strawberry.field(description="The storageKey presignUpload returned.")
    tags: list[str] | None = strawberry.field(default=None, description="Tags to attach.")
    collection_id: strawberry.ID | None = strawberry.field(
        default=None, description="A collection of this workspace."
    )
    name: str | None = strawberry.field(
        default=None, description="Display name; defaults to originalName."
    )


@strawberry.input(description="A manual focal point, as fractions of the upright image.")
class FocalPointInput:
    x: float = strawberry.field(description="0 (left edge) to 1 (right edge).")
    y: float = strawberry.field(description="0 (top edge) to 1 (bottom edge).")


@strawberry.input(description="Changes to an asset; omitted fields stay as they are.")
class UpdateAssetInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, description="New name.")
    tags: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces every tag."
    )
    collection_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="New collection; null takes it out of any."
    )
    location_x: float | None = strawberry.field(
        default=strawberry.UNSET, description="Horizontal canvas position."
    )
    location_y: float | None = strawberry.field(
        default=strawberry.UNSET, description="Vertical canvas position."
    )
    focal_point: FocalPointInput | None = strawberry.field(
        default=strawberry.UNSET,
        description="A manual focal point; null returns to the automatic one.",
    )
