from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import multipart
from schema.assets.multipart_types import UploadedPart, UploadedParts
from schema.context import require_scope


async def list_multipart_parts(
    info: strawberry.Info,
    upload_id: Annotated[
        strawberry.ID, strawberry.argument(description="From startMultipartUpload.")
    ],
) -> UploadedParts:
    principal = require_scope(info, "write")
    parts = await multipart.list_parts(info.context.runtime.storage, principal.org_id, upload_id)
    return UploadedParts(
        parts=[
            UploadedPart(part_number=p.part_number, size=p.size, etag=p.etag)  # type: ignore[arg-type]
            for p in parts
        ]
    )
