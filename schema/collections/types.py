"""GraphQL types of collections."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry

from pixelwand.errors import BadRequest
from schema.dataloaders import ASSETS_PER_COLLECTION

if TYPE_CHECKING:
    from schema.assets.types import Asset


@strawberry.type(description="A folder of assets; collections nest.")
class Collection:
    id: strawberry.ID = strawberry.field(description="cuid-style id.")
    name: str = strawberry.field(description="Unique within the workspace.")
    parent_id: strawberry.ID | None = strawberry.field(description="The parent, if nested.")
    color: str = strawberry.field(description="#rrggbb.")
    created_at: dt.datetime = strawberry.field(description="When it was created.")

    @strawberry.field(description="The parent collection (batched per request).")
    async def parent(self, info: strawberry.Info) -> Collection | None:
        if self.parent_id is None:
            return None
        return await info.context.loaders.collection.load(self.parent_id)

    @strawberry.field(description="Direct children, by name (batched per request).")
    async def children(self, info: strawberry.Info) -> list[Collection]:
        return await info.context.loaders.children.load(self.id)

    @strawberry.field(
        description="Assets directly in this collection, newest first (at most 500; "
        "page with assets(collectionId:) beyond that). Batched per request."
    )
    async def assets(
        self,
        info: strawberry.Info,
        first: Annotated[
            int | None,
            strawberry.argument(
                description="At most this many, newest first (0-500; default 500). A smaller "
                "value also lowers the query's cost."
            ),
        ] = None,
    ) -> list[Annotated[Asset, strawberry.lazy("schema.assets.types")]]:
        if first is not None and not 0 <= first <= ASSETS_PER_COLLECTION:
            raise BadRequest(f"first must be between 0 and {ASSETS_PER_COLLECTION}")
        if first == 0:
            return []
        per = ASSETS_PER_COLLECTION if first is None else first
        return await info.context.loaders.collection_assets(per).load(self.id)


@strawberry.type(description="The outcome of createCollection.")
class CreateCollectionResult:
    collection: Collection = strawberry.field(description="The new or existing collection.")
    created: bool = strawberry.field(description="False when the name already existed.")


@strawberry.input(description="A collection to create (idempotent on name).")
class CreateCollectionInput:
    name: str = strawberry.field(description="Unique within the workspace.")
    color: str | None = strawberry.field(default=None, description="#rrggbb; default #6366f1.")
    parent_id: strawberry.ID | None = strawberry.field(
        default=None, description="A collection of this workspace."
    )
