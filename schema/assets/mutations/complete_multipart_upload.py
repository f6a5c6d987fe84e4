from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import multipart
from schema.assets.multipart_types import CompleteMultipartUploadInput
from schema.assets.types import FinalizeUploadResult
from schema.context import require_scope


async def complete_multipart_upload(
    info: strawberry.Info,
    input: Annotated[
        CompleteMultipartUploadInput, strawberry.argument(description="The upload to complete.")
    ],
) -> FinalizeUploadResult:
    principal = require_scope(info, "write")
    runtime = info.context.runtime
    parts = None
    if input.parts is not None:
        parts = [{"part_number": p.part_number, "etag": p.etag} for p in input.parts]
    asset, created = await multipart.complete_upload(
        runtime.storage,
        runtime.run_blocking,
        principal.org_id,
        upload_id=input.upload_id,
        parts=parts,
        tags=input.tags,
        collection_id=input.collection_id,
        name=input.name,
    )
    return FinalizeUploadResult(asset=asset, created=created)  # type: ignore[arg-type]
