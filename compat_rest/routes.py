"""/api/v1: each route turns HTTP input into variables for its stored operation.

Check order (DESIGN.md): the gate has done 401 → 402 → 429; here 403 (scope) comes
before any look at the input, then the operation's own 400 → 404/403 → 402.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat_rest.executor import run
from compat_rest.openapi import OPENAPI_PATH, document_bytes
from compat_rest.operations import StoredOperation, stored_operations
from pixelwand.errors import BadRequest, Forbidden, PixelWandError
from pixelwand.imaging.perceptual import is_perceptual_text, parse_perceptual
from pixelwand.models import ExportJob
from pixelwand.services.validation import check_strings, check_text
from pixelwand.web.exports import stream_job
from pixelwand.web.requests import parse_json, read_body
from pixelwand.web.responses import JSONResponse, rest_error
from schema.context import Context

Handler = Callable[[Request, StoredOperation], Awaitable[Response]]

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
# Query-string numbers: ASCII digits, an optional minus (so that a negative page gets the
# range message). int() alone reads "1_0", "+5", " 5" and "٣" too. More than 10 digits is
# out of range, told without converting them.
_INTEGER = re.compile(r"-?[0-9]+")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


# --- input helpers ----------------------------------------------------------------------


async def _json_body(request: Request, allowed: set[str]) -> dict[str, Any]:
    raw = await read_body(request, request.app.state.runtime.settings.max_json_body_bytes)
    if not raw.strip():
        raise BadRequest("request body must be a JSON object")
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    for key in body:
        if key not in allowed:
            raise BadRequest(f"unknown field {check_text(key, 'field name', 64)!r}")
    check_strings(body, "")
    # GraphQL would coerce a lone value into a one-item list; JSON clients mean what they send.
    if "tags" in body and body["tags"] is not None and not isinstance(body["tags"], list):
        raise BadRequest("tags must be a list of strings")
    return body


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadRequest(f"{name} must be a whole number (ASCII digits)")
    if len(raw.lstrip("-")) > 10 or not _INT_MIN <= int(raw) <= _INT_MAX:
        raise BadRequest(f"{name} is out of range")
    return int(raw)


def _str_param(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    # The bound for parameters whose field defines none; tighter ones (q, name, preset,
    # tags) are checked by the services, with the same messages as on GraphQL.
    return check_text(raw, name)


def _list_param(request: Request, name: str, max_length: int = 4096) -> list[str] | None:
    """A comma-separated list; a repeated parameter adds its values (`?a=1&a=2` is `1,2`)."""
    raw = ",".join(v for v in request.query_params.getlist(name) if v) or None
    if raw is not None:
        check_text(raw, name, max_length)
    return [item.strip() for item in raw.split(",")] if raw is not None else None


def _bool_param(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise BadRequest(f"{name} must be true or false")


# --- routes -----------------------------------------------------------------------------


async def list_assets(request: Request, op: StoredOperation) -> Response:
    media = _str_param(request, "type")
    if media is not None and media.upper() not in ("IMAGE", "VIDEO"):
        raise BadRequest("type must be IMAGE or VIDEO")
    tags = _str_param(request, "tags")
    variables = {
        "q": _str_param(request, "q"),
        "type": media.upper() if media else None,
        "collectionId": _str_param(request, "collectionId"),
        "tags": [t for t in tags.split(",")] if tags else None,
        "page": _int_param(request, "page", 1),
        "pageSize": _int_param(request, "pageSize", 50),
        # Up to 200 comma-separated "sha256:<64 hex>" (the service checks each one).
        "contentHash": _list_param(request, "contentHash", 200 * 72),
    }
    return JSONResponse(await _run(request, op, variables))


_PRESIGN_FIELDS = {"originalName", "mimeType", "size"}
_FINALIZE_FIELDS = {
    "originalName",
    "mimeType",
    "size",
    "storageKey",
    "tags",
    "collectionId",
    "name",
}
# Multipart modes (docs/multipart.md): the fields each takes, and its stored operation.
_MULTIPART_FIELDS = {
    "multipart-start": {"originalName", "mimeType", "size"},
    "multipart-sign": {"uploadId", "partNumbers"},
    "multipart-list": {"uploadId"},
    "multipart-complete": {"uploadId", "parts", "tags", "collectionId", "name"},
    "multipart-abort": {"uploadId"},
}
_ASSET_BODY_FIELDS = {"mode"}.union(_FINALIZE_FIELDS, *_MULTIPART_FIELDS.values())


async def create_asset(request: Request, op: StoredOperation) -> Response:
    body = await _json_body(request, _ASSET_BODY_FIELDS)
    mode = body.pop("mode", None)
    if mode == "presign":
        for key in body:
            if key not in _PRESIGN_FIELDS:
                raise BadRequest(f"unknown field {key!r} for mode presign")
        presign = stored_operations()["presign_upload"]
        return JSONResponse(await _run(request, presign, {"input": _required(body, presign)}))
    if mode == "finalize":
        for key in body:
            if key not in _FINALIZE_FIELDS:
                raise BadRequest(f"unknown field {key!r}")
        finalize = stored_operations()["finalize_upload"]
        result = await _run(request, finalize, {"input": _required(body, finalize)})
        return JSONResponse(result["asset"], status_code=201 if result["created"] else 200)
    if isinstance(mode, str) and mode in _MULTIPART_FIELDS:
        return await _multipart(request, mode, body)
    raise BadRequest(
        'mode must be "presign", "finalize", "multipart-start", "multipart-sign", '
        '"multipart-list", "multipart-complete" or "multipart-abort"'
    )


def _required(body: dict[str, Any], op: StoredOperation) -> dict[str, Any]:
    required = {
        "presign_upload": ("originalName", "mimeType", "size"),
        "finalize_upload": ("originalName", "mimeType", "size", "storageKey"),
        "start_multipart_upload": ("originalName", "mimeType", "size"),
        "sign_multipart_parts": ("uploadId",),
        "list_multipart_parts": ("uploadId",),
        "complete_multipart_upload": ("uploadId",),
        "abort_multipart_upload": ("uploadId",),
    }[op.name]
    for field in required:
        if body.get(field) is None:
            raise BadRequest(f"{field} is required")
    return body


async def _multipart(request: Request, mode: str, body: dict[str, Any]) -> Response:
    for key in body:
        if key not in _MULTIPART_FIELDS[mode]:
            raise BadRequest(f"unknown field {key!r} for mode {mode}")
    # GraphQL would coerce a lone value into a one-item list; JSON clients mean what they send.
    for field in ("partNumbers", "parts"):
        if body.get(field) is not None and not isinstance(body[field], list):
            raise BadRequest(f"{field} must be a list")
    if mode == "multipart-start":
        op = stored_operations()["start_multipart_upload"]
        return JSONResponse(await _run(request, op, {"input": _required(body, op)}))
    if mode == "multipart-sign":
        op = stored_operations()["sign_multipart_parts"]
        return JSONResponse(await _run(request, op, {"input": _required(body, op)}))
    if mode == "multipart-complete":
        op = stored_operations()["complete_multipart_upload"]
        result = await _run(request, op, {"input": _required(body, op)})
        return JSONResponse(result["asset"], status_code=201 if result["created"] else 200)
    name = "list_multipart_parts" if mode == "multipart-list" else "abort_multipart_upload"
    op = stored_operations()[name]
    return JSONResponse(await _run(request, op, {"uploadId": _required(body, op)["uploadId"]}))


async def get_asset(request: Request, op: StoredOperation) -> Response:
    return JSONResponse(await _run(request, op, {"id": request.path_params["id"]}))


async def update_asset(request: Request, op: StoredOperation) -> Response:
    body = await _json_body(request, {"name", "tags", "collectionId", "focalPoint"})
    _check_focal_point(body)
    return JSONResponse(await _run(request, op, {"id": request.path_params["id"], "input": body}))


def _check_focal_point(body: dict[str, Any]) -> None:
    """The shape GraphQL's FocalPointInput takes; its range is checked by the service."""
    if "focalPoint" not in body or body["focalPoint"] is None:
        return
    point = body["focalPoint"]
    if not isinstance(point, dict) or set(point) != {"x", "y"}:
        raise BadRequest('focalPoint must be {"x": 0-1, "y": 0-1} or null')
    for axis in ("x", "y"):
        if isinstance(point[axis], bool) or not isinstance(point[axis], int | float):
            raise BadRequest(f"focalPoint.{axis} must be a number between 0 and 1")


async def delete_asset(request: Request, op: StoredOperation) -> Response:
    return JSONResponse(await _run(request, op, {"id": request.path_params["id"]}))


async def list_collections(request: Request, op: StoredOperation) -> Response:
    parent = _str_param(request, "parentId")
    top_level = parent is not None and parent.lower() == "null"
    variables = {
        "name": request.query_params.get("name"),  # checked by the service (bound 200)
        "parentId": None if top_level else parent,
        "topLevelOnly": top_level,
    }
    return JSONResponse({"collections": await _run(request, op, variables)})


async def create_collection(request: Request, op: StoredOperation) -> Response:
    body = await _json_body(request, {"name", "color", "parentId"})
    if body.get("name") is None:
        raise BadRequest("name is required")
    result = await _run(request, op, {"input": body})
    return JSONResponse(result["collection"], status_code=201 if result["created"] else 200)


async def list_export_presets(request: Request, op: StoredOperation) -> Response:
    return JSONResponse({"presets": await _run(request, op, {})})


async def upsert_export_preset(request: Request, op: StoredOperation) -> Response:
    body = await _json_body(
        request,
        {"name", "format", "quality", "maxWidth", "maxHeight", "preserveAspect", "gravity"}
        | _PERCEPTUAL,
    )
    for field in ("name", "format"):
        if body.get(field) is None:
            raise BadRequest(f"{field} is required")
    _quality_shorthand(body, "")
    result = await _run(request, op, {"input": body})
    return JSONResponse(result["preset"], status_code=201 if result["created"] else 200)


async def export_url(request: Request, op: StoredOperation) -> Response:
    quality = _str_param(request, "quality")
    perceptual = _str_param(request, "perceptual")
    if is_perceptual_text(quality):  # quality=auto…: the shorthand of perceptual
        shorthand = parse_perceptual(quality, "quality")
        if perceptual is not None and parse_perceptual(perceptual) != shorthand:
            raise BadRequest("quality: give quality=auto… or perceptual, not both")
        perceptual, quality = shorthand, None
    formats = _str_param(request, "formats")
    variables = {
        "assetId": request.path_params["id"],
        "preset": _str_param(request, "preset"),
        "format": _str_param(request, "format"),
        "quality": None if quality is None else _int_param(request, "quality", None),
        "maxWidth": _int_param(request, "maxWidth", None),
        "maxHeight": _int_param(request, "maxHeight", None),
        "preserveAspect": _bool_param(request, "preserveAspect"),
        "ttl": _int_param(request, "ttl", None),
        "gravity": _str_param(request, "gravity"),
        "posterAt": _str_param(request, "posterAt"),
        "perceptual": perceptual,
        "formats": formats.split(",") if formats is not None else None,
    }
    return JSONResponse(await _run(request, op, variables))


_PERCEPTUAL = {"perceptual", "formats"}
_EXPORT_CONFIG = {
    "format",
    "quality",
    "maxWidth",
    "maxHeight",
    "preserveAspect",
    "renameOnExport",
    "gravity",
} | _PERCEPTUAL


def _quality_shorthand(body: dict[str, Any], prefix: str) -> None:
    """A JSON `quality` of "auto…" is `perceptual` (GraphQL's quality is an Int)."""
    quality = body.get("quality")
    if is_perceptual_text(quality):
        shorthand = parse_perceptual(quality, f"{prefix}quality")
        given = body.get("perceptual")
        if given is not None and parse_perceptual(given, f"{prefix}perceptual") != shorthand:
            raise BadRequest(f"{prefix}quality: give quality=auto… or perceptual, not both")
        body["perceptual"], body["quality"] = shorthand, None
    if isinstance(body.get("formats"), str):
        body["formats"] = body["formats"].split(",")


async def create_export(request: Request, op: StoredOperation) -> Response:
    """Validate through createExport, then stream the archive in this same response."""
    body = await _json_body(request, {"assetIds", "config"})
    if body.get("assetIds") is None:
        raise BadRequest("assetIds is required")
    if not isinstance(body["assetIds"], list):
        raise BadRequest("assetIds must be a list of asset ids")
    config = body.get("config")
    if config is not None:
        if not isinstance(config, dict):
            raise BadRequest("config must be an object")
        for key in config:
            if key not in _EXPORT_CONFIG:
                raise BadRequest(f"unknown field 'config.{key}'")
        _quality_shorthand(config, "config.")
    result = await _run(request, op, {"input": body})
    job = await ExportJob.get(id=result["id"])
    return await stream_job(request.app.state.runtime, job)


async def openapi_json(request: Request) -> Response:
    """The OpenAPI document: public (no key, no rate limit; see pixelwand/web/gate.py)."""
    return Response(document_bytes(), media_type="application/json")


# --- plumbing ---------------------------------------------------------------------------


async def _run(request: Request, op: StoredOperation, variables: dict[str, Any]) -> Any:
    runtime = request.app.state.runtime
    context = Context(
        runtime=runtime,
        principal=request.state.principal,
        max_cost=runtime.settings.graphql_max_cost,
    )
    return await run(op, variables, context)


def _endpoint(op_name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        op = stored_operations()[op_name]
        principal = request.state.principal
        try:
            if not principal.has(op.scope):
                raise Forbidden(f"this API key lacks the {op.scope} scope")
            return await handler(request, op)
        except PixelWandError as exc:
            return rest_error(exc.status, exc.message)

    endpoint.__name__ = handler.__name__
    return endpoint


# Full paths in the application's own router: a Mount would route every API call twice
# (about 2% of a get-by-id's CPU, measured).
PREFIX = "/api/v1"

routes = [
    Route(PREFIX + "/assets", _endpoint("list_assets", list_assets), methods=["GET"]),
    Route(PREFIX + "/assets", _endpoint("finalize_upload", create_asset), methods=["POST"]),
    Route(PREFIX + "/assets/{id}", _endpoint("get_asset", get_asset), methods=["GET"]),
    Route(PREFIX + "/assets/{id}", _endpoint("update_asset", update_asset), methods=["PATCH"]),
    Route(PREFIX + "/assets/{id}", _endpoint("delete_asset", delete_asset), methods=["DELETE"]),
    Route(PREFIX + "/assets/{id}/export-url", _endpoint("export_url", export_url), methods=["GET"]),
    Route(PREFIX + "/exports", _endpoint("create_export", create_export), methods=["POST"]),
    Route(
        PREFIX + "/collections", _endpoint("list_collections", list_collections), methods=["GET"]
    ),
    Route(
        PREFIX + "/collections", _endpoint("create_collection", create_collection), methods=["POST"]
    ),
    Route(
        PREFIX + "/export-presets",
        _endpoint("list_export_presets", list_export_presets),
        methods=["GET"],
    ),
    Route(
        PREFIX + "/export-presets",
        _endpoint("upsert_export_preset", upsert_export_preset),
        methods=["POST"],
    ),
    Route(OPENAPI_PATH, openapi_json, methods=["GET"]),
]
