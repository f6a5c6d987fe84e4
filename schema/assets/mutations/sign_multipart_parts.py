from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import multipart
from schema.assets.multipart_types import SignedPart, SignedParts, SignMultipartPartsInput
from schema.context import require_scope


async def sign_multipart_parts(
    info: strawberry.Info,
    input: Annotated[
        SignMultipartPartsInput, strawberry.argument(description="The parts to sign.")
    ],
) -> SignedParts:
    principal = require_scope(info, "write")
    signed = await multipart.sign_parts(
        info.context.runtime.storage, principal.org_id, input.upload_id, input.part_numbers
    )
    return SignedParts(
        parts=[
            SignedPart(
                part_number=p.part_number,
                url=p.url,
                method=p.method,
                headers=p.headers,  # type: ignore[arg-type]  # a JSON object
                expires_at=p.expires_at,
            )
            for p in signed
        ]
    )
