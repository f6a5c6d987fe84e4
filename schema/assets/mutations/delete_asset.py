from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import assets
from schema.assets.types import DeleteAssetResult
from schema.context import require_scope


async def delete_asset(
    info: strawberry.Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The asset's id.")],
) -> DeleteAssetResult:
    principal = require_scope(info, "write")
    deleted_id = await assets.delete_asset(principal.org_id, id)
    return DeleteAssetResult(id=strawberry.ID(deleted_id), deleted=True)
