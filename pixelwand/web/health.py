"""Load-balancer probes: /healthz (process up), /readyz (database and storage reachable)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from tortoise import connections

from pixelwand.web.responses import JSONResponse


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime = request.app.state.runtime
    timeout = runtime.settings.storage_timeout_seconds

    async def database() -> None:
        await connections.get("default").execute_query("SELECT 1")

    db_state, storage_state = await asyncio.gather(
        _probe(database, timeout), _probe(runtime.storage.check, timeout)
    )
    checks = {"database": db_state, "storage": storage_state}
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503
    )


async def _probe(check: Callable[[], Awaitable[object]], seconds: float) -> str:
    """The state of one dependency, "ok" or "unavailable: <why>", within `seconds`.

    The check runs in a task of its own: on a hung database even a cancelled query keeps
    its pool connection until asyncpg's cancellation gives up, and the probe must not wait
    for that. The task is cancelled and left to finish its cleanup in the background.
    """
    task = asyncio.ensure_future(check())
    task.add_done_callback(_retrieve)
    try:
        await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        task.cancel()
        return "unavailable: TimeoutError"
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def _retrieve(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()  # seen here, so asyncio does not log it as never retrieved
