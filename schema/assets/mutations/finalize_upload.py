from __future__ import annotations

import functools
from typing import Annotated

import strawberry

from pixelwand.services import uploads
from pixelwand.services.rendering import run_probe
from schema.assets.inputs import FinalizeUploadInput
from schema.assets.types import FinalizeUploadResult
from schema.context import require_scope


async def finalize_upload(
    info: strawberry.Info,
    input: Annotated[
        FinalizeUploadInput, strawberry.argument(description="The upload to finalize.")
    ],
) -> FinalizeUploadResult:
    principal = require_scope(info, "write")
    runtime = info.context.runtime
    asset, created = await uploads.finalize_upload(
        runtime.storage,
        functools.partial(run_probe, runtime),
        principal.org_id,
        runtime.limits(principal.plan).storage_quota_bytes,
        original_name=input.original_name,
        mime_type=input.mime_type,
        size=input.size,
        storage_key=input.storage_key,
        tags=input.tags,
        collection_id=input.collection_id,
        name=input.name,
        max_size=runtime.settings.max_upload_bytes,
    )
    return FinalizeUploadResult(asset=asset, created=created)  # type: ignore[arg-type]
