from __future__ import annotations

import strawberry

from pixelwand.services import presets
from schema.context import require_scope
from schema.presets.types import ExportPreset


@strawberry.type
class PresetQueries:
    @strawberry.field(description="Export presets of the workspace, by name.")
    async def export_presets(self, info: strawberry.Info) -> list[ExportPreset]:
        principal = require_scope(info, "read")
        return await presets.list_presets(principal.org_id)  # type: ignore[return-value]
