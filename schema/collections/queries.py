from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import collections
from schema.collections.types import Collection
from schema.context import require_scope


@strawberry.type
class CollectionQueries:
    @strawberry.field(description="Collections of the workspace, by name.")
    async def collections(
        self,
        info: strawberry.Info,
        name: Annotated[str | None, strawberry.argument(description="Exact name.")] = None,
        parent_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only children of this collection."),
        ] = None,
        top_level_only: Annotated[
            bool, strawberry.argument(description="Only collections without a parent.")
        ] = False,
    ) -> list[Collection]:
        principal = require_scope(info, "read")
        return await collections.list_collections(  # type: ignore[return-value]
            principal.org_id, name=name, parent_id=parent_id, top_level_only=top_level_only
        )
