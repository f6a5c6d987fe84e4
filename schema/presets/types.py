"""GraphQL types of export presets."""

from __future__ import annotations

import datetime as dt
import enum

import strawberry


@strawberry.enum(description="Output formats of exports.")
class ImageFormat(enum.StrEnum):
    JPEG = "JPEG"
    PNG = "PNG"
    WEBP = "WEBP"
    AVIF = "AVIF"


@strawberry.type(description="A named output spec for export URLs.")
class ExportPreset:
    id: strawberry.ID = strawberry.field(description="cuid-style id.")
    name: str = strawberry.field(description="Unique within the workspace.")
    format: str = strawberry.field(description="JPEG, PNG, WEBP or AVIF.")
    quality: int = strawberry.field(description="1-100.")
    max_width: int | None = strawberry.field(description="Bounding width, 1-16384.")
    max_height: int | None = strawberry.field(description="Bounding height, 1-16384.")
    preserve_aspect: bool = strawberry.field(
        description="true: fit inside, never enlarge; false: exact size, centre crop."
    )
    created_at: dt.datetime = strawberry.field(description="When it was created.")
    updated_at: dt.datetime = strawberry.field(description="When it last changed.")
    gravity: str = strawberry.field(
        description="Where crops keep the picture: center (default), focal, attention, entropy."
    )
    perceptual: str | None = strawberry.field(
        default=None,
        description="Perceptual target, normalised (auto:high, auto:85); null: fixed quality.",
    )
    formats: list[str] | None = strawberry.field(
        default=None,
        description="Candidates of format AUTO, in order; null: the default (AVIF, WEBP, JPEG) "
        "or a fixed format.",
    )


@strawberry.input(description="A preset to create or replace (by name).")
class UpsertExportPresetInput:
    name: str = strawberry.field(description="Unique within the workspace.")
    format: str = strawberry.field(description="JPEG, PNG, WEBP or AVIF (any case; jpg too).")
    quality: int | None = strawberry.field(default=None, description="1-100; default 85.")
    max_width: int | None = strawberry.field(default=None, description="1-16384.")
    max_height: int | None = strawberry.field(default=None, description="1-16384.")
    preserve_aspect: bool | None = strawberry.field(default=None, description="Default true.")
    gravity: str | None = strawberry.field(
        default=None,
        description="center (default), focal, attention or entropy; all but center need "
        "preserveAspect false.",
    )
    perceptual: str | None = strawberry.field(
        default=None,
        description="auto, auto:low|medium|high|best or auto:NN (30-95): quality chosen per "
        "image for that SSIMULACRA2 score; quality stays the fallback.",
    )
    formats: list[str] | None = strawberry.field(
        default=None,
        description="With format AUTO: candidate formats (default AVIF, WEBP, JPEG; PNG may "
        "be listed).",
    )


@strawberry.type(description="The outcome of upsertExportPreset.")
class UpsertExportPresetResult:
    preset: ExportPreset = strawberry.field(description="The preset as stored.")
    created: bool = strawberry.field(description="False when an existing preset was replaced.")
