"""Asset mutations, one file per field."""

from __future__ import annotations

import strawberry

from schema.assets.mutations.delete_asset import delete_asset
from schema.assets.mutations.finalize_upload import finalize_upload
from schema.assets.mutations.presign_upload import presign_upload
from schema.assets.mutations.update_asset import update_asset


@strawberry.type
class AssetMutations:
    presign_upload = strawberry.mutation(
        resolver=presign_upload,
        description="Step 1 of an upload: reserve a storage key and get a presigned PUT URL.",
    )
    finalize_upload = strawberry.mutation(
        resolver=finalize_upload,
        description="Step 3 of an upload: check the stored bytes and create the asset.",
    )
    update_asset = strawberry.mutation(
        resolver=update_asset, description="Change an asset's name, tags, collection or position."
    )
    delete_asset = strawberry.mutation(
        resolver=delete_asset,
        description="Hide an asset at once; its stored objects are swept later.",
    )
