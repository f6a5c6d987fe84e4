"""GET /exports/{id}: a createExport link, streaming the ZIP as it is produced."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from pixelwand import metrics
from pixelwand.errors import NotFound
from pixelwand.models import ExportJob
from pixelwand.runtime import Runtime
from pixelwand.services import exports, webhooks
from pixelwand.signing import SignatureError
from pixelwand.web.responses import rest_error

# Archives one organization may be writing at once in a process (of the 32 all may): an
# archive renders every image it holds, and a link can be fetched again and again, so
# without this one tenant's downloads could take every slot and the image pool with them.
MAX_ARCHIVES_PER_ORGANIZATION = 4
_writing: Counter[str] = Counter()


class _Slotted(StreamingResponse):
    """A ZIP stream that gives its organization's slot back when it ends, however it ends
    (the whole archive sent, the client gone, an error)."""

    def __init__(self, org_id: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.org_id = org_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            _writing[self.org_id] -= 1
            if _writing[self.org_id] <= 0:
                del _writing[self.org_id]


async def stream_job(runtime: Runtime, job: ExportJob) -> Response:
    org_id = job.organization_id
    if _writing[org_id] >= MAX_ARCHIVES_PER_ORGANIZATION:
        return rest_error(
            429,
            f"this organization is already downloading {MAX_ARCHIVES_PER_ORGANIZATION} "
            "archives at once; retry when one has finished",
            headers={"Retry-After": "5"},
        )
    assets, missing = await exports.job_assets(job)
    config = exports.ExportConfig.from_json(job.config)
    _writing[org_id] += 1  # the response is always called: it gives the slot back
    return _Slotted(
        org_id,
        _reported(runtime.exports.archive(assets, config, missing), job),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="pixelwand-export-{job.id}.zip"',
            "Cache-Control": "no-store",
        },
    )


async def _reported(chunks: AsyncIterator[bytes], job: ExportJob) -> AsyncIterator[bytes]:
    """The archive's bytes; once the last one is sent, `export.completed` (an archive the
    client abandoned midway never completes)."""
    sent = 0
    try:
        async for chunk in chunks:
            sent += len(chunk)
            yield chunk
    finally:
        metrics.bytes_served.labels("zip").inc(sent)
    data = {
        "id": job.id,
        "assetIds": list(job.asset_ids),
        "assetCount": len(job.asset_ids),
        "bytes": sent,
        "createdAt": webhooks.api_time(job.created_at),
    }
    if await webhooks.record(job.organization_id, "export.completed", data):
        webhooks.wake_workers()


async def download_export(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    params = request.query_params
    try:
        job = await exports.job_for_link(
            runtime.settings,
            request.path_params["id"],
            params.get("exp", ""),
            params.get("sig", ""),
        )
    except SignatureError as exc:
        return rest_error(403, f"export link refused: {exc}")
    except NotFound as exc:
        return rest_error(404, exc.message)
    return await stream_job(runtime, job)
