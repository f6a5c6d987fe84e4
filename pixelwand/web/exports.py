"""GET /exports/{id}: a createExport link, streaming the ZIP as it is produced."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pixelwand import metrics
from pixelwand.errors import NotFound
from pixelwand.models import ExportJob
from pixelwand.runtime import Runtime
from pixelwand.services import exports, webhooks
from pixelwand.signing import SignatureError
from pixelwand.web.responses import rest_error


async def stream_job(runtime: Runtime, job: ExportJob) -> Response:
    assets, missing = await exports.job_assets(job)
    config = exports.ExportConfig.from_json(job.config)
    return StreamingResponse(
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
