"""GET /exports/{id}: a createExport link, streaming the ZIP as it is produced."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pixelwand.errors import NotFound
from pixelwand.models import ExportJob
from pixelwand.runtime import Runtime
from pixelwand.services import exports
from pixelwand.signing import SignatureError
from pixelwand.web.responses import rest_error


async def stream_job(runtime: Runtime, job: ExportJob) -> Response:
    assets, missing = await exports.job_assets(job)
    config = exports.ExportConfig.from_json(job.config)
    return StreamingResponse(
        runtime.exports.archive(assets, config, missing),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="pixelwand-export-{job.id}.zip"',
            "Cache-Control": "no-store",
        },
    )


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
