from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import multipart
from schema.assets.multipart_types import MultipartUpload, StartMultipartUploadInput
from schema.context import require_scope


async def start_multipart_upload(
    info: strawberry.Info,
    input: Annotated[
        StartMultipartUploadInput, strawberry.argument(description="The file to upload.")
    ],
) -> MultipartUpload:
    principal = require_scope(info, "write")
    runtime = info.context.runtime
    started = await multipart.start_upload(
        runtime.storage,
        principal.org_id,
        runtime.limits(principal.plan).storage_quota_bytes,
        original_name=input.original_name,
        mime_type=input.mime_type,
        size=input.size,
        max_size=runtime.settings.max_multipart_bytes,
        retention_seconds=runtime.settings.upload_retention_seconds,
    )
    return MultipartUpload(
        upload_id=strawberry.ID(started.upload_id),
        storage_key=started.storage_key,
        part_size=started.part_size,  # type: ignore[arg-type]
        part_count=started.part_count,
        expires_at=started.expires_at,
    )
