from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import collections
from schema.collections.types import CreateCollectionInput, CreateCollectionResult
from schema.context import require_scope


async def create_collection(
    info: strawberry.Info,
    input: Annotated[CreateCollectionInput, strawberry.argument(description="The collection.")],
) -> CreateCollectionResult:
    principal = require_scope(info, "write")
    row, created = await collections.create_collection(
        principal.org_id, name=input.name, color=input.color, parent_id=input.parent_id
    )
    return CreateCollectionResult(collection=row, created=created)  # type: ignore[arg-type]


@strawberry.type
class CollectionMutations:
    create_collection = strawberry.mutation(
        resolver=create_collection,
        description="Create a collection, or answer the existing one with that name.",
    )
