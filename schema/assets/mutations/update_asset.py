from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import assets
from schema.assets.inputs import UpdateAssetInput
from schema.assets.types import Asset
from schema.context import require_scope


async def update_asset(
    info: strawberry.Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The asset's id.")],
    input: Annotated[UpdateAssetInput, strawberry.argument(description="The changes.")],
) -> Asset:
    principal = require_scope(info, "write")
    changes = {
        field: getattr(input, field)
        for field in ("name", "tags", "collection_id", "location_x", "location_y")
        if getattr(input, field) is not strawberry.UNSET
    }
    focal = input.focal_point
    if focal is not strawberry.UNSET:
        changes["focal_point"] = None if focal is None else {"x": focal.x, "y": focal.y}
    return await assets.update_asset(principal.org_id, id, **changes)  # type: ignore[return-value]
