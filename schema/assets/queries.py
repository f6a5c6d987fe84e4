"""Asset queries: assets (paged, filtered) and asset(id)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import assets
from schema.assets.types import Asset, AssetPage, MediaType
from schema.context import require_scope


@strawberry.type
class AssetQueries:
    @strawberry.field(description="Assets of the workspace, newest first, filtered and paged.")
    async def assets(
        self,
        info: strawberry.Info,
        q: Annotated[
            str | None,
            strawberry.argument(description="Case-insensitive substring of name or originalName."),
        ] = None,
        type: Annotated[
            MediaType | None, strawberry.argument(description="IMAGE or VIDEO.")
        ] = None,
        collection_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only assets in this collection.")
        ] = None,
        tags: Annotated[
            list[str] | None,
            strawberry.argument(description="Only assets carrying every one of these tags."),
        ] = None,
        page: Annotated[int, strawberry.argument(description="Page number, from 1.")] = 1,
        page_size: Annotated[int, strawberry.argument(description="1 to 200.")] = 50,
        content_hash: Annotated[
            list[str] | None,
            strawberry.argument(
                description='Only assets whose contentHash is one of these ("sha256:<hex>", '
                "up to 200): duplicates of a file."
            ),
        ] = None,
    ) -> AssetPage:
        principal = require_scope(info, "read")
        result = await assets.list_assets(
            principal.org_id,
            assets.AssetFilter(
                q=q,
                type=type.value if type is not None else None,
                collection_id=collection_id,
                tags=tuple(tags or ()),
                page=page,
                page_size=page_size,
                content_hashes=tuple(content_hash or ()),
            ),
        )
        return AssetPage(
            items=result.items,  # type: ignore[arg-type]
            page=result.page,
            page_size=result.page_size,
            total=result.total,
            total_pages=result.total_pages,
        )

    @strawberry.field(description="One asset of the workspace by id.")
    async def asset(
        self,
        info: strawberry.Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The asset's id.")],
    ) -> Asset:
        principal = require_scope(info, "read")
        return await assets.get_asset(principal.org_id, id)  # type: ignore[return-value]
