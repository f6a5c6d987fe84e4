from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import presets
from schema.context import require_scope
from schema.presets.types import UpsertExportPresetInput, UpsertExportPresetResult


async def upsert_export_preset(
    info: strawberry.Info,
    input: Annotated[UpsertExportPresetInput, strawberry.argument(description="The preset.")],
) -> UpsertExportPresetResult:
    principal = require_scope(info, "write")
    row, created = await presets.upsert_preset(
        principal.org_id,
        name=input.name,
        format=input.format,
        quality=input.quality,
        max_width=input.max_width,
        max_height=input.max_height,
        preserve_aspect=input.preserve_aspect,
        gravity=input.gravity,
        perceptual=input.perceptual,
        formats=input.formats,
    )
    return UpsertExportPresetResult(preset=row, created=created)  # type: ignore[arg-type]


@strawberry.type
class PresetMutations:
    upsert_export_preset = strawberry.mutation(
        resolver=upsert_export_preset,
        description="Create a preset, or replace the one with that name.",
    )
