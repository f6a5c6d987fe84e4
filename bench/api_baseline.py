"""Hand-written baseline for the API benchmark: the practical limit of this stack.

Not part of the product. A bare Starlette app that answers the benchmark's read requests
with the same data and the same JSON bytes as `GET /api/v1/assets` / `GET /api/v1/assets/{id}`,
without GraphQL, middleware, rate limiting or dataclass records:

* auth: `Authorization: Bearer <key>` → SHA-256 → `api_keys` row (not revoked) → organization,
  cached per key for one second like the product's Authenticator; 401 without a valid key,
  403 without the read scope.
* `/api/v1/assets` and `/api/v1/assets/{id}` — Tortoise ORM (the same models, connection and
  settings as the product via `pixelwand.db.connect`), the same querysets as
  `pixelwand.services.assets` (COUNT, then the page: same filters, org + deleted_at IS NULL,
  `ORDER BY uploaded_at DESC, id DESC`, LIMIT/OFFSET, the same 15 columns via `values_list`).
* `/raw/v1/assets` and `/raw/v1/assets/{id}` — the same two SQL statements as text, through
  Tortoise's connection (`execute_query`: aiosqlite on SQLite, asyncpg on PostgreSQL) with
  no queryset building and no row conversion: the JSON `tags` column goes out as an
  `orjson.Fragment`, timestamps are formatted from the stored text / driver value.
* JSON with orjson, keys in the REST answer's order, timestamps like the API's DateTime scalar
  (`2026-04-22T21:00:00.000Z`), so the bodies are byte-identical to the product's (the
  benchmark checks that before it measures).

Served like the product: uvicorn with uvloop and httptools, one process, no access log.

    .venv/bin/python bench/api_baseline.py --port 8100   # BENCH_DATABASE_URL=sqlite://... or postgres://...
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise import connections  # noqa: E402
from tortoise.expressions import Q, Subquery  # noqa: E402

from pixelwand import db  # noqa: E402
from pixelwand.models import ApiKey, Asset, AssetTag  # noqa: E402

COLUMNS = (
    "id", "organization_id", "name", "original_name", "size", "mime_type", "media_type",
    "storage_key", "tags", "collection_id", "location_x", "location_y", "width", "height",
    "uploaded_at",
)  # fmt: skip
MAX_PAGE_SIZE = 200
_AUTH_TTL = 1.0
_auth_cache: dict[str, tuple[float, tuple[str, bool] | None]] = {}


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error(status: int, message: str) -> Response:
    return JSON({"error": message}, status_code=status)


async def _org_of(request: Request) -> str | Response:
    """The caller's organization id, or the error response."""
    auth = request.headers.get("authorization") or ""
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _error(401, "missing API key")
    digest = hashlib.sha256(token.encode()).hexdigest()
    now = time.monotonic()
    hit = _auth_cache.get(digest)
    if hit is not None and hit[0] > now:
        found = hit[1]
    else:
        rows = await ApiKey.filter(key_hash=digest, revoked_at=None).values_list(
            "organization_id", "scopes"
        )
        found = (rows[0][0], "read" in rows[0][1].split(",")) if rows else None
        _auth_cache[digest] = (now + _AUTH_TTL, found)
    if found is None:
        return _error(401, "invalid or revoked API key")
    if not found[1]:
        return _error(403, "this API key lacks the read scope")
    return found[0]


def _ts(value: dt.datetime) -> str:
    """The API's DateTime format: 2026-04-22T21:00:00.000Z."""
    if value.utcoffset():
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _ts_text(value: Any) -> str:
    """From SQLite's stored text ("2024-05-01 12:00:00.123000+00:00") or a driver datetime."""
    if isinstance(value, str):
        if len(value) == 32 and value.endswith("+00:00"):
            return f"{value[:10]}T{value[11:23]}Z"
        value = dt.datetime.fromisoformat(value)
    return _ts(value)


def _item(r: Any) -> dict[str, Any]:
    return {
        "id": r[0],
        "name": r[2],
        "originalName": r[3],
        "size": r[4],
        "mimeType": r[5],
        "mediaType": r[6],
        "storageKey": r[7],
        "tags": r[8],
        "collectionId": r[9],
        "locationX": r[10],
        "locationY": r[11],
        "uploadedAt": _ts(r[14]),
        "width": r[12],
        "height": r[13],
    }


def _raw_item(r: Any) -> dict[str, Any]:
    tags = r[8]
    if isinstance(tags, str):
        # SQLite keeps Tortoise's compact JSON text: pass it through. PostgreSQL's jsonb text
        # has spaces (["a", "b"]): decode it, so the bytes match the product's answer.
        tags = orjson.Fragment(tags) if ", " not in tags else orjson.loads(tags)
    return {
        "id": r[0],
        "name": r[2],
        "originalName": r[3],
        "size": r[4],
        "mimeType": r[5],
        "mediaType": r[6],
        "storageKey": r[7],
        "tags": tags,
        "collectionId": r[9],
        "locationX": float(r[10]),
        "locationY": float(r[11]),
        "uploadedAt": _ts_text(r[14]),
        "width": r[12],
        "height": r[13],
    }


class _Bad(Exception):
    pass


def _params(request: Request) -> tuple[str | None, str | None, list[str], int, int]:
    qp = request.query_params
    q = qp.get("q") or None
    media = qp.get("type") or None
    if media is not None:
        media = media.upper()
        if media not in ("IMAGE", "VIDEO"):
            raise _Bad("type must be IMAGE or VIDEO")
    tags = []
    for t in (qp.get("tags") or "").split(","):
        t = t.strip()
        if t and t not in tags:
            tags.append(t)
    try:
        page = int(qp.get("page") or 1)
        page_size = int(qp.get("pageSize") or 50)
    except ValueError:
        raise _Bad("page and pageSize must be whole numbers") from None
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise _Bad("bad page or pageSize")
    return q, media, tags, page, page_size


def _page(items: list[Any], page: int, page_size: int, total: int) -> dict[str, Any]:
    return {
        "items": items,
        "page": page,
        "pageSize": page_size,
        "total": total,
        "totalPages": -(-total // page_size) if total else 0,
    }


# --- Tortoise ORM: the service's querysets ----------------------------------------------


async def list_assets(request: Request) -> Response:
    org = await _org_of(request)
    if isinstance(org, Response):
        return org
    try:
        q, media, tags, page, page_size = _params(request)
    except _Bad as exc:
        return _error(400, str(exc))
    qs = Asset.filter(organization_id=org, deleted_at=None)
    if media is not None:
        qs = qs.filter(media_type=media)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(original_name__icontains=q))
    for tag in tags:
        tagged = AssetTag.filter(organization_id=org, tag=tag).values("asset_id")
        qs = qs.filter(id__in=Subquery(tagged))
    total = await qs.count()
    rows: list[Any] = []
    if total > (page - 1) * page_size:
        rows = (
            await qs.order_by("-uploaded_at", "-id")
            .offset((page - 1) * page_size)
            .limit(page_size)
            .values_list(*COLUMNS)
        )
    return JSON(_page([_item(r) for r in rows], page, page_size, total))


async def get_asset(request: Request) -> Response:
    org = await _org_of(request)
    if isinstance(org, Response):
        return org
    asset_id = request.path_params["id"]
    rows = await Asset.filter(id=asset_id, deleted_at=None).values_list(*COLUMNS)
    if not rows:
        return _error(404, f"asset {asset_id} not found")
    if rows[0][1] != org:
        return _error(403, f"asset {asset_id} belongs to another organization")
    return JSON(_item(rows[0]))


# --- the same SQL as text, through Tortoise's connection --------------------------------

_SELECT = ",".join(f'"{c}"' for c in COLUMNS)


def _where(q: str | None, media: str | None, tags: list[str], dialect: str) -> str:
    """The service's filters as Tortoise renders them, with `?` placeholders. On
    PostgreSQL `q` tests the stored upper-case columns (migration 0006), where the trigram
    indexes are, as the service's own SQL does."""
    where = ['"organization_id"=?', '"deleted_at" IS NULL']
    if media is not None:
        where.append('"media_type"=?')
    if q and dialect == "postgres":
        where.append(
            "(\"name_upper\" LIKE UPPER(?) ESCAPE '\\' OR "
            "\"original_name_upper\" LIKE UPPER(?) ESCAPE '\\')"
        )
    elif q:
        where.append(
            "(UPPER(CAST(\"name\" AS VARCHAR)) LIKE UPPER(?) ESCAPE '\\' OR "
            "UPPER(CAST(\"original_name\" AS VARCHAR)) LIKE UPPER(?) ESCAPE '\\')"
        )
    for _ in tags:
        where.append(
            '"id" IN (SELECT "asset_id" FROM "asset_tags" WHERE "organization_id"=? AND "tag"=?)'
        )
    return " AND ".join(where)


def _numbered(sql: str, dialect: str) -> str:
    if dialect != "postgres":
        return sql
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def raw_list_assets(request: Request) -> Response:
    org = await _org_of(request)
    if isinstance(org, Response):
        return org
    try:
        q, media, tags, page, page_size = _params(request)
    except _Bad as exc:
        return _error(400, str(exc))
    conn = connections.get("default")
    dialect = conn.capabilities.dialect
    where = _where(q, media, tags, dialect)
    values: list[Any] = [org]
    if media is not None:
        values.append(media)
    if q:
        values += [_like(q), _like(q)]
    for tag in tags:
        values += [org, tag]
    _, count_rows = await conn.execute_query(
        _numbered(f'SELECT COUNT(*) FROM "assets" WHERE {where}', dialect), values
    )
    total = count_rows[0][0]
    rows: list[Any] = []
    if total > (page - 1) * page_size:
        sql = f'SELECT {_SELECT} FROM "assets" WHERE {where} ORDER BY "uploaded_at" DESC,"id" DESC'
        values.append(page_size)
        sql += " LIMIT ?"
        if page > 1:  # Tortoise leaves out OFFSET 0 too
            values.append((page - 1) * page_size)
            sql += " OFFSET ?"
        _, rows = await conn.execute_query(_numbered(sql, dialect), values)
    return JSON(_page([_raw_item(r) for r in rows], page, page_size, total))


async def raw_get_asset(request: Request) -> Response:
    org = await _org_of(request)
    if isinstance(org, Response):
        return org
    asset_id = request.path_params["id"]
    conn = connections.get("default")
    sql = f'SELECT {_SELECT} FROM "assets" WHERE "id"=? AND "deleted_at" IS NULL'
    _, rows = await conn.execute_query(_numbered(sql, conn.capabilities.dialect), [asset_id])
    if not rows:
        return _error(404, f"asset {asset_id} not found")
    if rows[0][1] != org:
        return _error(403, f"asset {asset_id} belongs to another organization")
    return JSON(_raw_item(rows[0]))


async def healthz(request: Request) -> Response:
    return JSON({"ok": True})


def create_app() -> Starlette:
    url = os.environ["BENCH_DATABASE_URL"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.connect(url)
        try:
            yield
        finally:
            await db.disconnect()

    return Starlette(
        routes=[
            Route("/api/v1/assets", list_assets, methods=["GET"]),
            Route("/api/v1/assets/{id}", get_asset, methods=["GET"]),
            Route("/raw/v1/assets", raw_list_assets, methods=["GET"]),
            Route("/raw/v1/assets/{id}", raw_get_asset, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> int:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8100)
    args = ap.parse_args()
    # The product's settings (pixelwand/cli.py cmd_serve).
    uvicorn.run(
        create_app,
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        log_level="info",
        access_log=False,
        proxy_headers=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
