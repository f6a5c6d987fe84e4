"""Public pages: the web console at `/`, GraphiQL at `/graphql`, Swagger UI at `/api/v1/docs`.

Everything is static and vendored under `pixelwand/web/static/` (no CDN, no build step); the
pages need no key and are not rate-limited (the gate lets them through), while every call
they make to the API carries the key the user pasted, kept in the tab's sessionStorage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Scripts only from this origin (no inline script); thumbnails, uploads and downloads may go
# to the object store's origin (S3 signed URLs), hence the wider img/connect/media sources.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src * data: blob:; media-src * blob:; connect-src *; font-src 'self' data:; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page(name: str) -> Response:
    return FileResponse(STATIC_DIR / "pages" / name, media_type="text/html", headers=PAGE_HEADERS)


async def console_page(request: Request) -> Response:
    return _page("console.html")


def graphiql_page() -> Response:
    return _page("graphiql.html")


async def api_docs_page(request: Request) -> Response:
    return _page("api-docs.html")


class _Assets(StaticFiles):
    """Static files (nosniff comes from Edge, on every answer); vendored files are immutable
    per release, cached an hour."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", "public, max-age=3600")
        return response


static_files = _Assets(directory=STATIC_DIR, follow_symlink=False)
