"""Composition root: builds the ASGI app from configuration.

`uvicorn --factory pixelwand.app:create_app` (what `pixelwand serve` runs) calls
`create_app()` once per worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from compat_rest.operations import stored_operations
from compat_rest.routes import routes as rest_routes
from compat_rest.webhooks import routes as webhook_routes
from pixelwand import db
from pixelwand.auth import Authenticator
from pixelwand.config import Settings
from pixelwand.errors import PixelWandError, map_exceptions
from pixelwand.imaging.pool import ImagePool
from pixelwand.ratelimit import rate_limiter_from_url
from pixelwand.runtime import Runtime
from pixelwand.services.exports import ExportStreamer
from pixelwand.services.facts import FactsWorker
from pixelwand.services.renditions import RenditionService
from pixelwand.services.sweeper import sweep
from pixelwand.services.webhook_delivery import DeliveryWorker
from pixelwand.storage import storage_from_url
from pixelwand.web.exports import download_export
from pixelwand.web.files import get_file, put_file
from pixelwand.web.gate import Gate
from pixelwand.web.graphql_endpoint import graphql_endpoint
from pixelwand.web.health import healthz, readyz
from pixelwand.web.metrics_endpoint import metrics_endpoint
from pixelwand.web.middleware import Edge
from pixelwand.web.pages import api_docs_page, console_page, static_files
from pixelwand.web.responses import rest_error
from schema import documents

log = logging.getLogger("pixelwand")


def build_runtime(settings: Settings) -> Runtime:
    runtime = Runtime(
        settings=settings,
        storage=storage_from_url(
            settings.storage_url,
            secret=settings.secret_key,
            base_url=settings.base_url(),
            timeout_seconds=settings.storage_timeout_seconds,
            copy_timeout_seconds=settings.storage_copy_timeout_seconds,
        ),
        authenticator=Authenticator(settings.auth_cache_seconds),
        limiter=rate_limiter_from_url(settings.rate_limit_url),
        image_pool=ImagePool(settings.image_workers),
    )
    runtime.renditions = RenditionService(runtime)
    runtime.exports = ExportStreamer(runtime)
    return runtime


async def _sweep_forever(runtime: Runtime) -> None:
    """At start-up (what a killed process left behind goes now), then every interval."""
    interval = runtime.settings.sweep_interval_seconds
    while True:
        try:
            with map_exceptions():  # an outage is a warning; the next round retries
                await sweep(
                    runtime.storage,
                    upload_retention_seconds=runtime.settings.upload_retention_seconds,
                )
        except PixelWandError as exc:
            log.warning("sweep not done: %s", exc.message)
        except Exception:  # a bug: keep sweeping, the next round retries what failed
            log.exception("sweep failed")
        await asyncio.sleep(interval)


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "not found", 405: "method not allowed"}
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # RFC 9110: a 405 lists what the resource allows. Starlette names the methods of the
        # first route that matched the path only; a path served by several routes (GET and
        # POST /api/v1/assets) allows the methods of all of them.
        headers["Allow"] = _allowed_methods(request)
    return rest_error(exc.status_code, messages.get(exc.status_code, exc.detail), headers or None)


def _allowed_methods(request: Request) -> str:
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
            methods |= route.methods
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return ", ".join(sorted(methods, key=lambda m: (order.index(m) if m in order else 99, m)))


def _tune_gc() -> None:
    """The cyclic collector, set for a server (A/B figures: REST list 200 on SQLite, wrk with
    8 connections, the same machine and minute).

    What startup loaded (schema, ORM, libraries) lives as long as the process; frozen, the
    collector stops re-scanning it in the full collections that request garbage keeps
    triggering: p99 51 -> 15-22 ms and +20% req/s. A first generation of 20,000 objects
    instead of 700 (a 200-row page allocates ~1,000 containers, freed by reference
    counting, not by the collector): +5% req/s."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    log.debug("startup objects frozen out of the cyclic GC: %d", gc.get_freeze_count())


def create_app(settings: Settings | None = None, *, run_sweeper: bool = True) -> Starlette:
    settings = settings or Settings.from_env()
    runtime = build_runtime(settings)
    documents.configure(
        max_bytes=settings.graphql_cache_bytes,
        max_document_bytes=settings.max_graphql_document_bytes,
    )
    stored_operations()  # parse and validate every REST operation now, not per request

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.connect(settings.database_url)
        background = []
        if run_sweeper and settings.sweep_interval_seconds > 0:
            background.append(asyncio.create_task(_sweep_forever(runtime)))
        if settings.webhook_worker:
            runtime.webhook_worker = DeliveryWorker(settings)
            background.append(asyncio.create_task(runtime.webhook_worker.run()))
        facts_worker = FactsWorker(runtime) if settings.facts_worker else None
        if facts_worker is not None:
            background.append(asyncio.create_task(facts_worker.run_forever()))
        _tune_gc()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if facts_worker is not None:
                facts_worker.close()
            if runtime.image_pool is not None:
                runtime.image_pool.close()
            await runtime.limiter.close()
            await runtime.storage.close()
            await db.disconnect()

    app = Starlette(
        routes=[
            Route("/", console_page, methods=["GET", "HEAD"]),
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/api/v1/docs", api_docs_page, methods=["GET", "HEAD"]),
            *rest_routes,
            *webhook_routes,
            Route("/files/{key:path}", put_file, methods=["PUT"]),
            Route("/files/{key:path}", get_file, methods=["GET", "HEAD"]),
            Route("/exports/{id}", download_export, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Mount("/static", app=static_files, name="static"),
        ],
        middleware=[
            Middleware(
                Edge,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
                expose_headers=[
                    "RateLimit-Limit",
                    "RateLimit-Remaining",
                    "RateLimit-Reset",
                    "Retry-After",
                    "X-Request-Id",
                    "ETag",
                ],
                max_age=600,
                access_log=settings.access_log,
                body_timeout=settings.body_timeout_seconds,
            ),
            Middleware(Gate, runtime=runtime, max_body_bytes=settings.max_json_body_bytes),
        ],
        # Anything else a route raises is answered by Edge (web/middleware.py), the one
        # boundary where exceptions become answers.
        exception_handlers={HTTPException: _not_found},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
