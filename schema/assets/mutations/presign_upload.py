from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import uploads
from schema.assets.inputs import PresignUploadInput
from schema.assets.types import PresignedUpload
from schema.context import require_scope


async def presign_upload(
    info: strawberry.Info,
    input: Annotated[PresignUploadInput, strawberry.argument(description="The file to upload.")],
) -> PresignedUpload:
    principal = require_scope(info, "write")
    runtime = info.context.runtime
    result = await uploads.presign_upload(
        runtime.storage,
        principal.org_id,
        runtime.limits(principal.plan).storage_quota_bytes,
        original_name=input.original_name,
        mime_type=input.mime_type,
        size=input.size,
        max_size=runtime.settings.max_upload_bytes,
    )
    return PresignedUpload(
        upload_url=result.upload_url,
        method=result.method,
        headers=result.headers,  # type: ignore[arg-type]  # a JSON object
        storage_key=result.storage_key,
        expires_at=result.expires_at,
    )
