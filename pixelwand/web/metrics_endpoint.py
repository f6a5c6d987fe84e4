"""GET /metrics: Prometheus' text format, for a scraper holding PIXELWAND_METRICS_TOKEN.

Without the variable the route does not exist (404), so a deployment exposes nothing it did
not ask for. A separate port would not work under uvicorn's `--workers`: every worker
answers on the one socket, and each adds up every worker's samples (pixelwand/metrics.py).
"""

from __future__ import annotations

import asyncio
import hmac

from starlette.requests import Request
from starlette.responses import Response

from pixelwand import metrics
from pixelwand.web.responses import rest_error


async def metrics_endpoint(request: Request) -> Response:
    token = request.app.state.runtime.settings.metrics_token
    if not token:
        return rest_error(404, "not found")
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return rest_error(401, "metrics need Authorization: Bearer <PIXELWAND_METRICS_TOKEN>")
    body, content_type = await asyncio.to_thread(metrics.exposition)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
