"""The OpenAPI 3.1 document of /api/v1, built once from the declarations in this file.

One `Operation` per route (method + full path), written with the small helpers below;
`document()` adds what every operation shares: the bearer security, the error answers of
the gate and the route (401, 402, 403, 429, 503; 400 when there is input; 404 when there is
an `{id}`; 413 when there is a body) and the RateLimit-* headers. To add a route: add its
`Operation` to `OPERATIONS` (and any new shape to `SCHEMAS`); tests/test_openapi.py fails
until the document and the routes agree, and every answer the test suite gets from
/api/v1 is checked against this document (tests/support/openapi_check.py).

Response objects list the fields every answer has; answers may carry more (extensions are
additive), but the test suite's check treats undocumented fields as an error, so a new
field is documented in the change that adds it.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import orjson

Schema = dict[str, Any]

PREFIX = "/api/v1"
OPENAPI_PATH = PREFIX + "/openapi.json"

# The limits the services enforce (pixelwand/services/*), as the document states them.
MAX_NAME = 255
MAX_COLLECTION_NAME = 200
MAX_PRESET_NAME = 100
MAX_TAGS = 50
MAX_TAG_LENGTH = 64
MAX_PAGE_SIZE = 200
MAX_DIMENSION = 16384
MAX_EXPORT_ASSETS = 500
MIN_TTL, MAX_TTL = 60, 86_400
FORMATS = ["JPEG", "PNG", "WEBP", "AVIF"]
MIME_TYPES = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/avif",
    "image/tiff",
    "video/mp4",
    "video/quicktime",
    "video/webm",
]


# --- schema helpers ---------------------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """`schema` or null (OpenAPI 3.1: a JSON Schema union, no `nullable` keyword)."""
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    if "anyOf" in schema:
        return {"anyOf": [*schema["anyOf"], {"type": "null"}]}
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    return out


def obj(
    properties: dict[str, Schema],
    required: tuple[str, ...] | str = (),
    *,
    closed: bool = False,
    description: str | None = None,
) -> Schema:
    """An object; `closed` for request bodies, where an unknown field is a 400."""
    schema: Schema = {"type": "object", "properties": properties}
    if required == "all":
        required = tuple(properties)
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def string(description: str | None = None, **constraints: Any) -> Schema:
    schema: Schema = {"type": "string", **constraints}
    if description:
        schema["description"] = description
    return schema


def integer(minimum: int | None = None, maximum: int | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "integer", **extra}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def boolean(**extra: Any) -> Schema:
    return {"type": "boolean", **extra}


def array(items: Schema, **constraints: Any) -> Schema:
    return {"type": "array", "items": items, **constraints}


ID = ref("Id")
TIMESTAMP = ref("Timestamp")
TAGS = array(string(maxLength=MAX_TAG_LENGTH), maxItems=MAX_TAGS)
# Formats are named schemas, not inline enums: generators name an inline enum after its
# operation or schema and field, and `exportUrl`'s `format` parameter (with AUTO) and the
# `ExportUrl` schema's `format` (without) would both be `ExportUrlFormat`.
FORMAT = ref("Format")
FORMAT_OR_AUTO = ref("RequestedFormat")
QUALITY = integer(1, 100, description="Encoder quality, 1-100; default 85")
PERCEPTUAL = string(
    "auto (= auto:high), auto:low|medium|high|best or auto:NN (30-95), any case: quality "
    "chosen per image for that SSIMULACRA2 score",
    maxLength=16,
)
# REST `quality` also takes the perceptual strings as a shorthand (quality=auto).
QUALITY_OR_PERCEPTUAL = {"anyOf": [QUALITY, PERCEPTUAL]}
FORMATS_LIST = string("With format AUTO: comma-separated candidates (default avif,webp,jpeg)")
DIMENSION = integer(1, MAX_DIMENSION)
GRAVITY = string(enum=["center", "focal", "attention", "entropy"])
FOCAL_POINT = obj(
    {
        "x": {"type": "number", "minimum": 0, "maximum": 1},
        "y": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "all",
    closed=True,
)


# --- operations -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    description: str = ""
    where: str = "query"  # or "path"


@dataclasses.dataclass(frozen=True)
class Answer:
    description: str
    schema: Schema | None = None
    media_type: str = "application/json"
    headers: dict[str, Schema] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Operation:
    method: str  # lower case, as OpenAPI writes it
    path: str  # in full: /api/v1/assets/{id}
    operation_id: str
    summary: str
    answers: dict[int, Answer]
    params: tuple[Param, ...] = ()
    body: Schema | None = None
    public: bool = False  # no key, no rate limit
    # What a 404 means when the input names other resources (an {id} in the path adds it).
    not_found: str = ""
    description: str = ""


ASSET_ID = Param("id", string(minLength=1), "The asset's id (`c` + 24 characters)", "path")
WEBHOOK_ID = Param("id", string(minLength=1), "The webhook's id", "path")
_UPLOAD_MODES = {
    "presign": "PresignRequest",
    "finalize": "FinalizeRequest",
    "multipart-start": "MultipartStartRequest",
    "multipart-sign": "MultipartSignRequest",
    "multipart-list": "MultipartListRequest",
    "multipart-complete": "MultipartCompleteRequest",
    "multipart-abort": "MultipartAbortRequest",
}
_ADMIN = "Needs the admin scope (403 otherwise, before the body is read)."


OPERATIONS: list[Operation] = [
    Operation(
        "get",
        PREFIX + "/assets",
        "listAssets",
        "List assets, newest first, with optional filters",
        not_found="collectionId names no collection",
        params=(
            Param("q", string(), "Case-insensitive substring of `name` or `originalName`"),
            Param("type", string(enum=["IMAGE", "VIDEO"]), "IMAGE or VIDEO (any case)"),
            Param("collectionId", string(), "Only assets in this collection"),
            Param("tags", string(), "Comma-separated; an asset must carry every tag listed"),
            Param("page", integer(1, default=1), "Page number, from 1"),
            Param("pageSize", integer(1, MAX_PAGE_SIZE, default=50), "Assets per page"),
            Param(
                "contentHash",
                string(),
                "`sha256:<hex>`, or up to 200 of them comma-separated (or the parameter repeated): "
                "assets with these bytes",
            ),
        ),
        answers={200: Answer("One page of assets", ref("AssetPage"))},
    ),
    Operation(
        "post",
        PREFIX + "/assets",
        "createAsset",
        "Upload in two steps: presign, PUT the bytes, finalize",
        not_found="collectionId names no collection",
        description=(
            '`mode: "presign"` answers a presigned PUT URL (200); `mode: "finalize"` checks '
            "the stored object and answers the asset: 201 when created, 200 when this "
            "storageKey was finalized before."
        ),
        body={
            "oneOf": [ref(name) for name in _UPLOAD_MODES.values()],
            "discriminator": {
                "propertyName": "mode",
                "mapping": {
                    mode: f"#/components/schemas/{name}" for mode, name in _UPLOAD_MODES.items()
                },
            },
        },
        answers={
            200: Answer(
                "Presign: where to PUT the bytes. Finalize or multipart-complete: the asset, "
                "finalized before. Other multipart modes: their answer (docs/multipart.md)",
                {
                    "anyOf": [
                        ref("PresignedUpload"),
                        ref("Asset"),
                        ref("MultipartStarted"),
                        ref("MultipartSignedParts"),
                        ref("MultipartParts"),
                        ref("MultipartAborted"),
                    ]
                },
            ),
            201: Answer("Finalize or multipart-complete: the new asset", ref("Asset")),
            409: Answer(
                "multipart: the upload is being completed, or is already final", ref("Error")
            ),
        },
    ),
    Operation(
        "get",
        PREFIX + "/assets/{id}",
        "getAsset",
        "Fetch one asset",
        params=(ASSET_ID,),
        answers={200: Answer("The asset", ref("Asset"))},
    ),
    Operation(
        "patch",
        PREFIX + "/assets/{id}",
        "updateAsset",
        "Change an asset's name, tags or collection",
        params=(ASSET_ID,),
        body=ref("AssetChanges"),
        answers={200: Answer("The updated asset", ref("Asset"))},
    ),
    Operation(
        "delete",
        PREFIX + "/assets/{id}",
        "deleteAsset",
        "Delete an asset (its stored objects are swept later)",
        params=(ASSET_ID,),
        answers={200: Answer("Deleted", ref("DeletedAsset"))},
    ),
    Operation(
        "get",
        PREFIX + "/assets/{id}/export-url",
        "exportUrl",
        "A short-lived signed URL to a transformed copy of one image",
        description="Either `preset` or inline parameters, not both; neither is a 400.",
        params=(
            ASSET_ID,
            Param("preset", string(maxLength=MAX_PRESET_NAME), "A preset's name"),
            Param("format", FORMAT_OR_AUTO, "Default: the source's format"),
            Param("quality", QUALITY_OR_PERCEPTUAL, "1-100, or auto… (as perceptual)"),
            Param("perceptual", PERCEPTUAL, "A perceptual target instead of a fixed quality"),
            Param("formats", FORMATS_LIST),
            Param("maxWidth", DIMENSION, "Bounding width"),
            Param("maxHeight", DIMENSION, "Bounding height"),
            Param(
                "preserveAspect",
                boolean(),
                "true (default): fit inside, never enlarge; false: exact size, centre crop"
                " (needs maxWidth and maxHeight); also 1 or 0",
            ),
            Param("ttl", integer(MIN_TTL, MAX_TTL, default=3600), "Seconds the URL lives"),
            Param(
                "gravity",
                GRAVITY,
                "Where a crop keeps the picture (needs preserveAspect false unless center)",
            ),
            Param(
                "posterAt",
                string(maxLength=32),
                "Videos: seconds (`2.5`) or a percentage (`25%`, the default) of the duration",
            ),
        ),
        answers={200: Answer("The signed URL", ref("ExportUrl"))},
    ),
    Operation(
        "post",
        PREFIX + "/exports",
        "createExport",
        "Batch-export up to 500 assets as one streamed ZIP",
        not_found="an asset id names no asset",
        description=(
            "Every id is checked (404/403) before the first byte; the archive then streams "
            "for as long as it takes. Images that fail to decode are listed in `errors.txt`."
        ),
        body=ref("ExportRequest"),
        answers={
            200: Answer(
                "The ZIP archive, streamed",
                {"type": "string", "contentMediaType": "application/zip"},
                media_type="application/zip",
                headers={"Content-Disposition": string("attachment; filename=…")},
            )
        },
    ),
    Operation(
        "get",
        PREFIX + "/collections",
        "listCollections",
        "List collections by name",
        not_found="parentId names no collection",
        params=(
            Param("name", string(maxLength=MAX_COLLECTION_NAME), "Exact name"),
            Param("parentId", string(), "A collection's id for its children; `null`: top level"),
        ),
        answers={
            200: Answer("The collections", obj({"collections": array(ref("Collection"))}, "all"))
        },
    ),
    Operation(
        "post",
        PREFIX + "/collections",
        "createCollection",
        "Create a collection; idempotent on its name",
        not_found="parentId names no collection",
        body=ref("CollectionRequest"),
        answers={
            200: Answer("A collection of that name existed: it, unchanged", ref("Collection")),
            201: Answer("The new collection", ref("Collection")),
        },
    ),
    Operation(
        "get",
        PREFIX + "/export-presets",
        "listExportPresets",
        "List export presets by name",
        answers={200: Answer("The presets", obj({"presets": array(ref("ExportPreset"))}, "all"))},
    ),
    Operation(
        "post",
        PREFIX + "/export-presets",
        "upsertExportPreset",
        "Create or replace a preset by name",
        body=ref("ExportPresetRequest"),
        answers={
            200: Answer("Replaced", ref("ExportPreset")),
            201: Answer("Created", ref("ExportPreset")),
        },
    ),
    Operation(
        "get",
        PREFIX + "/webhooks",
        "listWebhooks",
        "List the workspace's webhook endpoints",
        description=_ADMIN,
        answers={200: Answer("The endpoints", obj({"webhooks": array(ref("Webhook"))}, "all"))},
    ),
    Operation(
        "post",
        PREFIX + "/webhooks",
        "createWebhook",
        "Register a webhook endpoint; its signing secret is answered once",
        description=_ADMIN + " URLs resolving to private or loopback addresses are refused.",
        body=ref("WebhookRequest"),
        answers={201: Answer("The endpoint and its secret", ref("CreatedWebhook"))},
    ),
    Operation(
        "patch",
        PREFIX + "/webhooks/{id}",
        "updateWebhook",
        "Change a webhook's URL, events or enabled state",
        description=_ADMIN,
        params=(WEBHOOK_ID,),
        body=ref("WebhookChanges"),
        answers={200: Answer("The endpoint", ref("Webhook"))},
    ),
    Operation(
        "delete",
        PREFIX + "/webhooks/{id}",
        "deleteWebhook",
        "Remove a webhook endpoint and its pending deliveries",
        description=_ADMIN,
        params=(WEBHOOK_ID,),
        answers={200: Answer("Deleted", ref("DeletedWebhook"))},
    ),
    Operation(
        "post",
        PREFIX + "/webhooks/{id}/test",
        "testWebhook",
        "Queue a webhook.test event for this endpoint (sent once)",
        description=_ADMIN,
        params=(WEBHOOK_ID,),
        answers={202: Answer("Queued", ref("WebhookTest"))},
    ),
    Operation(
        "get",
        PREFIX + "/webhooks/{id}/deliveries",
        "listWebhookDeliveries",
        "The endpoint's latest 50 deliveries, newest first",
        description=_ADMIN,
        params=(WEBHOOK_ID,),
        answers={
            200: Answer("The deliveries", obj({"deliveries": array(ref("WebhookDelivery"))}, "all"))
        },
    ),
    Operation(
        "get",
        PREFIX + "/docs",
        "apiDocs",
        "This document, rendered (Swagger UI, served from this server)",
        public=True,
        answers={200: Answer("An HTML page", {"type": "string"}, media_type="text/html")},
    ),
    Operation(
        "get",
        OPENAPI_PATH,
        "openapi",
        "This document",
        public=True,
        answers={200: Answer("OpenAPI 3.1", {"type": "object"})},
    ),
]


# --- shapes -----------------------------------------------------------------------------

ASSET_FIELDS: dict[str, Schema] = {
    "id": ID,
    "name": string("Display name (defaults to originalName)"),
    "originalName": string("The uploaded file's name"),
    "size": integer(1, description="Bytes"),
    "mimeType": string(enum=MIME_TYPES),
    "mediaType": string(enum=["IMAGE", "VIDEO"]),
    "storageKey": string("orgs/<orgId>/<yyyy>/<mm>/<uuid>-<name>"),
    "tags": array(string()),
    "collectionId": nullable(ID),
    "locationX": {"type": "number"},
    "locationY": {"type": "number"},
    "uploadedAt": TIMESTAMP,
    "width": nullable(integer(1, description="Pixels (images; videos: the upright poster frame)")),
    "height": nullable(integer(1, description="Pixels (images; videos: the upright poster frame)")),
    "contentHash": nullable(
        string("sha256:<hex> of the original", pattern="^sha256:[0-9a-f]{64}$")
    ),
    "thumbhash": nullable(string("ThumbHash placeholder, standard base64")),
    "blurhash": nullable(string("BlurHash placeholder, 4x3 components")),
    "dominantColor": nullable(string(pattern="^#[0-9a-f]{6}$")),
    "durationSeconds": nullable({"type": "number", "minimum": 0}),
    "videoCodec": nullable(string("FFmpeg's codec name")),
    "frameRate": nullable({"type": "number", "minimum": 0}),
    "focalPoint": nullable(
        obj(
            {
                "x": {"type": "number", "minimum": 0, "maximum": 1},
                "y": {"type": "number", "minimum": 0, "maximum": 1},
                "source": string(enum=["auto", "manual"]),
            },
            "all",
        )
    ),
}

_UPLOAD_DECLARED: dict[str, Schema] = {
    "originalName": string(minLength=1, maxLength=MAX_NAME),
    "mimeType": string("One of the accepted types (any case)", enum=MIME_TYPES),
    "size": integer(1, description="Exact size in bytes; at most the server's upload limit"),
}

_EVENT_TYPES = [
    "asset.finalized",
    "asset.updated",
    "asset.deleted",
    "collection.created",
    "export.completed",
]
_WEBHOOK_FIELDS: dict[str, Schema] = {
    "id": ID,
    "url": string(format="uri"),
    "events": array(string(enum=_EVENT_TYPES)),
    "enabled": boolean(),
    "createdAt": TIMESTAMP,
    "updatedAt": TIMESTAMP,
}
_WEBHOOK_INPUT: dict[str, Schema] = {
    "url": string("http(s) URL, no credentials", minLength=1, maxLength=2048),
    "events": array(string(enum=_EVENT_TYPES), minItems=1),
    "enabled": nullable(boolean(description="Default true")),
}
_UPLOAD_ID = string("What multipart-start answered")

SCHEMAS: dict[str, Schema] = {
    "Format": string("An encoded image's format", enum=FORMATS),
    "RequestedFormat": string(
        "JPEG, PNG, WEBP, AVIF or AUTO (the smallest of `formats` meeting the target), any case",
        enum=[*FORMATS, "AUTO"],
    ),
    "Webhook": obj(_WEBHOOK_FIELDS, "all"),
    "CreatedWebhook": obj({**_WEBHOOK_FIELDS, "secret": string(pattern="^whsec_")}, "all"),
    "WebhookRequest": obj(_WEBHOOK_INPUT, ("url", "events"), closed=True),
    "WebhookChanges": obj(
        {
            "url": nullable(_WEBHOOK_INPUT["url"]),
            "events": nullable(_WEBHOOK_INPUT["events"]),
            "enabled": _WEBHOOK_INPUT["enabled"],
        },
        closed=True,
        description="Only the fields given change",
    ),
    "DeletedWebhook": obj({"id": ID, "deleted": {"const": True}}, "all"),
    "WebhookTest": obj(
        {"webhookId": ID, "eventId": string(pattern="^evt_"), "type": {"const": "webhook.test"}},
        "all",
    ),
    "WebhookDelivery": obj(
        {
            "id": ID,
            "eventId": string(pattern="^evt_"),
            "eventType": string(),
            "status": string(enum=["pending", "succeeded", "failed", "skipped"]),
            "attempts": integer(0),
            "responseStatus": nullable(integer(100, 599)),
            "latencyMs": nullable({"type": "number"}),
            "error": nullable(string()),
            "createdAt": TIMESTAMP,
            "lastAttemptAt": nullable(TIMESTAMP),
            "nextAttemptAt": nullable(TIMESTAMP),
            "deliveredAt": nullable(TIMESTAMP),
        },
        "all",
    ),
    "MultipartStartRequest": obj(
        {"mode": {"const": "multipart-start"}, **_UPLOAD_DECLARED}, "all", closed=True
    ),
    "MultipartSignRequest": obj(
        {
            "mode": {"const": "multipart-sign"},
            "uploadId": _UPLOAD_ID,
            "partNumbers": nullable(array(integer(1, 10_000), maxItems=10_000)),
        },
        ("mode", "uploadId"),
        closed=True,
    ),
    "MultipartListRequest": obj(
        {"mode": {"const": "multipart-list"}, "uploadId": _UPLOAD_ID}, "all", closed=True
    ),
    "MultipartCompleteRequest": obj(
        {
            "mode": {"const": "multipart-complete"},
            "uploadId": _UPLOAD_ID,
            "parts": nullable(
                array(obj({"partNumber": integer(1, 10_000), "etag": string()}, "all"))
            ),
            "tags": nullable(TAGS),
            "collectionId": nullable(string()),
            "name": nullable(string(minLength=1, maxLength=MAX_NAME)),
        },
        ("mode", "uploadId"),
        closed=True,
    ),
    "MultipartAbortRequest": obj(
        {"mode": {"const": "multipart-abort"}, "uploadId": _UPLOAD_ID}, "all", closed=True
    ),
    "MultipartStarted": obj(
        {
            "uploadId": string(),
            "storageKey": string(),
            "partSize": integer(1),
            "partCount": integer(1, 10_000),
            "expiresAt": TIMESTAMP,
        },
        "all",
    ),
    "MultipartSignedParts": obj(
        {
            "parts": array(
                obj(
                    {
                        "partNumber": integer(1, 10_000),
                        "url": string(format="uri"),
                        "method": {"const": "PUT"},
                        "headers": {"type": "object"},
                        "expiresAt": TIMESTAMP,
                    },
                    "all",
                )
            )
        },
        "all",
    ),
    "MultipartParts": obj(
        {
            "parts": array(
                obj({"partNumber": integer(1, 10_000), "size": integer(0), "etag": string()}, "all")
            )
        },
        "all",
    ),
    "MultipartAborted": obj({"uploadId": string(), "aborted": {"const": True}}, "all"),
    "Error": obj(
        {"error": string("Short, specific, safe to show"), "code": string("Stable error code")},
        ("error",),
    ),
    "Id": string("cuid-style: `c` + 24 lowercase letters or digits", pattern="^c[0-9a-z]{24}$"),
    "Timestamp": string(
        "ISO-8601 UTC with milliseconds",
        format="date-time",
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
    ),
    "Asset": obj(ASSET_FIELDS, "all"),
    "AssetPage": obj(
        {
            "items": array(ref("Asset")),
            "page": integer(1),
            "pageSize": integer(1, MAX_PAGE_SIZE),
            "total": integer(0),
            "totalPages": integer(0),
        },
        "all",
    ),
    "PresignRequest": obj({"mode": {"const": "presign"}, **_UPLOAD_DECLARED}, "all", closed=True),
    "FinalizeRequest": obj(
        {
            "mode": {"const": "finalize"},
            **_UPLOAD_DECLARED,
            "storageKey": string("What presign answered"),
            "tags": nullable(TAGS),
            "collectionId": nullable(string()),
            "name": nullable(string(minLength=1, maxLength=MAX_NAME)),
        },
        ("mode", "originalName", "mimeType", "size", "storageKey"),
        closed=True,
    ),
    "PresignedUpload": obj(
        {
            "uploadUrl": string(format="uri"),
            "method": {"const": "PUT"},
            "headers": obj(
                {"Content-Type": string(enum=MIME_TYPES)},
                ("Content-Type",),
                description="Headers the PUT must carry",
            ),
            "storageKey": string(),
            "expiresAt": TIMESTAMP,
        },
        "all",
    ),
    "AssetChanges": obj(
        {
            "name": string(minLength=1, maxLength=MAX_NAME),
            "tags": TAGS,
            "collectionId": nullable(string(description="null takes the asset out")),
            "focalPoint": nullable(FOCAL_POINT),
        },
        closed=True,
        description="Only the fields given change (focalPoint null: back to the automatic one)",
    ),
    "DeletedAsset": obj({"id": ID, "deleted": {"const": True}}, "all"),
    "ExportUrl": obj(
        {
            "assetId": ID,
            "url": string(format="uri"),
            "format": FORMAT,
            "ttlSeconds": integer(MIN_TTL, MAX_TTL),
            "expiresAt": TIMESTAMP,
            "cached": boolean(description="The rendition already existed and was reused"),
            "width": integer(1),
            "height": integer(1),
            "bytes": integer(1),
            "quality": integer(1, 100, description="The encoder setting used (100: lossless)"),
            "score": nullable(
                {"type": "number", "description": "SSIMULACRA2 reached; null without a target"}
            ),
            "perceptual": nullable(string("The target, normalised (auto:high); null: none")),
        },
        "all",
    ),
    "ExportConfig": obj(
        {
            "format": nullable(FORMAT_OR_AUTO),
            "quality": nullable(QUALITY_OR_PERCEPTUAL),
            "perceptual": nullable(PERCEPTUAL),
            "formats": nullable({"anyOf": [FORMATS_LIST, array(string())]}),
            "maxWidth": nullable(DIMENSION),
            "maxHeight": nullable(DIMENSION),
            "preserveAspect": nullable(boolean()),
            "renameOnExport": nullable(
                boolean(description="true: entries take the asset's name; else originalName")
            ),
            "gravity": nullable(GRAVITY),
        },
        closed=True,
    ),
    "ExportRequest": obj(
        {
            "assetIds": array(string(), minItems=1, maxItems=MAX_EXPORT_ASSETS, uniqueItems=True),
            "config": nullable(ref("ExportConfig")),
        },
        ("assetIds",),
        closed=True,
    ),
    "Collection": obj(
        {
            "id": ID,
            "name": string(),
            "parentId": nullable(ID),
            "color": string(pattern="^#[0-9a-f]{6}$"),
            "createdAt": TIMESTAMP,
        },
        "all",
    ),
    "CollectionRequest": obj(
        {
            "name": string(minLength=1, maxLength=MAX_COLLECTION_NAME),
            "color": nullable(string("#rrggbb; default #6366f1", pattern="^#[0-9a-fA-F]{6}$")),
            "parentId": nullable(string()),
        },
        ("name",),
        closed=True,
    ),
    "ExportPreset": obj(
        {
            "id": ID,
            "name": string(),
            "format": FORMAT_OR_AUTO,
            "quality": integer(1, 100),
            "maxWidth": nullable(DIMENSION),
            "maxHeight": nullable(DIMENSION),
            "preserveAspect": boolean(),
            "gravity": GRAVITY,
            "perceptual": nullable(PERCEPTUAL),
            "formats": nullable(array(string())),
            "createdAt": TIMESTAMP,
            "updatedAt": TIMESTAMP,
        },
        "all",
    ),
    "ExportPresetRequest": obj(
        {
            "name": string(minLength=1, maxLength=MAX_PRESET_NAME),
            "format": FORMAT_OR_AUTO,
            "quality": nullable(QUALITY_OR_PERCEPTUAL),
            "maxWidth": nullable(DIMENSION),
            "maxHeight": nullable(DIMENSION),
            "preserveAspect": nullable(boolean(description="Default true")),
            "gravity": nullable(GRAVITY),
            "perceptual": nullable(PERCEPTUAL),
            "formats": nullable({"anyOf": [FORMATS_LIST, array(string())]}),
        },
        ("name", "format"),
        closed=True,
        description="The whole spec: omitted fields take their defaults",
    ),
}

_RATE_HEADERS = {
    "RateLimit-Limit": "Requests per second this key's plan allows",
    "RateLimit-Remaining": "Requests left in the current allowance",
    "RateLimit-Reset": "Seconds until the allowance is whole again",
}
HEADERS: dict[str, Schema] = {
    name: {"description": text, "schema": integer(0), "required": True}
    for name, text in _RATE_HEADERS.items()
}
HEADERS["Retry-After"] = {
    "description": "Seconds to wait before retrying",
    "schema": integer(1),
    "required": True,
}


def _component_headers(*names: str) -> dict[str, Schema]:
    """Headers declared once under components.headers (the value is not used)."""
    return {name: {} for name in names}


def _error(description: str, *, rate_headers: bool = True, retry_after: bool = False) -> Answer:
    headers = _component_headers(*_RATE_HEADERS) if rate_headers else {}
    if retry_after:
        headers["Retry-After"] = {}
    return Answer(description, ref("Error"), headers=headers)


# Answers every API operation can give, before or around its own.
_GATE = {
    401: _error("Key missing, malformed, unknown or revoked", rate_headers=False),
    402: Answer(
        "Free plan (no API access), or the storage quota is exceeded",
        ref("Error"),
    ),
    403: _error("The key lacks the scope, or the resource is another organization's"),
    429: _error("Over the plan's requests/second for this key", retry_after=True),
    503: Answer("The database or the object store is unavailable; retry", ref("Error")),
}


# --- the document -----------------------------------------------------------------------


def _response(answer: Answer) -> Schema:
    out: Schema = {"description": answer.description}
    if answer.schema is not None:
        out["content"] = {answer.media_type: {"schema": answer.schema}}
    if answer.headers:
        out["headers"] = {
            name: {"$ref": f"#/components/headers/{name}"}
            if name in HEADERS
            else {"schema": schema, "required": True}
            for name, schema in answer.headers.items()
        }
    return out


def _operation(op: Operation) -> Schema:
    answers = dict(op.answers)
    if not op.public:
        for status, answer in _GATE.items():
            answers.setdefault(status, answer)
        if op.params or op.body is not None:
            answers.setdefault(400, _error("Invalid input; the message names the field"))
        if op.not_found or any(p.where == "path" for p in op.params):
            what = "No such resource in this workspace"
            answers.setdefault(404, _error(f"{what}; {op.not_found}" if op.not_found else what))
        if op.body is not None:
            answers.setdefault(413, Answer("The request body is over its limit", ref("Error")))
        for status in op.answers:  # successful answers carry the rate-limit headers too
            answer = answers[status]
            headers = _component_headers(*_RATE_HEADERS) | answer.headers
            answers[status] = dataclasses.replace(answer, headers=headers)
    out: Schema = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "responses": {str(s): _response(a) for s, a in sorted(answers.items())},
    }
    if op.description:
        out["description"] = op.description
    if op.public:
        out["security"] = []
    if op.params:
        out["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in op.params
        ]
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": op.body}},
        }
    return out


@cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pixel Wand API",
            "version": "1",
            "description": (
                "REST compatibility layer of Pixel Wand (GraphQL at /graphql is the primary"
                ' API). Errors answer `{"error": "<message>"}`. Every authenticated answer '
                "carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset; a 429 adds "
                "Retry-After. Query strings: unknown parameters are ignored; numbers are "
                "ASCII digits; booleans true|false|1|0."
            ),
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: `Authorization: Bearer ak_live_…`",
                }
            },
            "schemas": SCHEMAS,
            "headers": HEADERS,
        },
    }


@cache
def document_bytes() -> bytes:
    return orjson.dumps(document())
