"""Asset mutations, one file per field."""

from __future__ import annotations

import strawberry

from schema.assets.mutations.abort_multipart_upload import abort_multipart_upload
from schema.assets.mutations.complete_multipart_upload import complete_multipart_upload
from schema.assets.mutations.delete_asset import delete_asset
from schema.assets.mutations.finalize_upload import finalize_upload
from schema.assets.mutations.list_multipart_parts import list_multipart_parts
from schema.assets.mutations.presign_upload import presign_upload
from schema.assets.mutations.sign_multipart_parts import sign_multipart_parts
from schema.assets.mutations.start_multipart_upload import start_multipart_upload
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
    # Multipart, resumable uploads (docs/multipart.md).
    start_multipart_upload = strawberry.mutation(
        resolver=start_multipart_upload,
        description="Multipart step 1: reserve the quota and a storage key; get the part size.",
    )
    sign_multipart_parts = strawberry.mutation(
        resolver=sign_multipart_parts,
        description="Multipart step 2: presigned PUT URLs for parts (again when they expire).",
    )
    list_multipart_parts = strawberry.mutation(
        resolver=list_multipart_parts,
        description="The parts received so far: what a resuming client need not send again.",
    )
    complete_multipart_upload = strawberry.mutation(
        resolver=complete_multipart_upload,
        description="Multipart step 3: join the parts, check them as finalizeUpload does, and "
        "create the asset (again: the same asset).",
    )
    abort_multipart_upload = strawberry.mutation(
        resolver=abort_multipart_upload,
        description="Drop a multipart upload: its parts are removed and its quota freed.",
    )
