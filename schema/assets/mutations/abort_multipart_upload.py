from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import multipart
from schema.assets.multipart_types import AbortMultipartUploadResult
from schema.context import require_scope


async def abort_multipart_upload(
    info: strawberry.Info,
    upload_id: Annotated[
        strawberry.ID, strawberry.argument(description="From startMultipartUpload.")
    ],
) -> AbortMultipartUploadResult:
    principal = require_scope(info, "write")
    aborted = await multipart.abort_upload(
        info.context.runtime.storage, principal.org_id, upload_id
    )
    return AbortMultipartUploadResult(upload_id=strawberry.ID(aborted), aborted=True)
