"""GraphQL at /graphql, black-box over HTTP: queries, mutations, error codes, isolation,
DataLoaders, limits and the transport (GET, GraphiQL, malformed bodies)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pixelwand.plans import Plan
from schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tests.conftest import Tenant
from tests.helpers import make_image, seed_assets

ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CUID = re.compile(r"^c[0-9a-z]{24}$")

_ASSET_FIELDS = """
  id name originalName size mimeType mediaType storageKey tags collectionId
  locationX locationY width height uploadedAt
"""

_ASSETS = """
query Assets($q: String, $type: MediaType, $collectionId: ID, $tags: [String!],
             $page: Int! = 1, $pageSize: Int! = 50) {
  assets(q: $q, type: $type, collectionId: $collectionId, tags: $tags,
         page: $page, pageSize: $pageSize) {
    items { ASSET_FIELDS }
    page pageSize total totalPages
  }
}""".replace("ASSET_FIELDS", _ASSET_FIELDS)

_ASSET = "query One($id: ID!) { asset(id: $id) { ASSET_FIELDS } }".replace(
    "ASSET_FIELDS", _ASSET_FIELDS
)

_PRESIGN = """
mutation Presign($input: PresignUploadInput!) {
  presignUpload(input: $input) { uploadUrl method headers storageKey expiresAt }
}"""

_FINALIZE = """
mutation Finalize($input: FinalizeUploadInput!) {
  finalizeUpload(input: $input) { created asset { ASSET_FIELDS } }
}""".replace("ASSET_FIELDS", _ASSET_FIELDS)

_UPDATE = """
mutation Update($id: ID!, $input: UpdateAssetInput!) {
  updateAsset(id: $id, input: $input) { ASSET_FIELDS }
}""".replace("ASSET_FIELDS", _ASSET_FIELDS)

_DELETE = "mutation Delete($id: ID!) { deleteAsset(id: $id) { id deleted } }"

_CREATE_COLLECTION = """
mutation Create($input: CreateCollectionInput!) {
  createCollection(input: $input) { created collection { id name parentId color createdAt } }
}"""

_COLLECTIONS = """
query Collections($name: String, $parentId: ID, $topLevelOnly: Boolean! = false) {
  collections(name: $name, parentId: $parentId, topLevelOnly: $topLevelOnly) {
    id name parentId color createdAt
  }
}"""

_UPSERT_PRESET = """
mutation Upsert($input: UpsertExportPresetInput!) {
  upsertExportPreset(input: $input) {
    created
    preset { id name format quality maxWidth maxHeight preserveAspect createdAt updatedAt }
  }
}"""

_VIEWER = """
{ viewer { organization { id name } plan scopes rateLimitPerSecond storageQuota storageUsed } }
"""

_API_KEYS = "{ apiKeys { id name prefix scopes createdAt revokedAt } }"

_CREATE_KEY = """
mutation CreateKey($scopes: [String!]!, $name: String! = "") {
  createApiKey(scopes: $scopes, name: $name) {
    key apiKey { id name prefix scopes createdAt revokedAt }
  }
}"""

_REVOKE_KEY = "mutation Revoke($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }"


# --- helpers ----------------------------------------------------------------------------


def _codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def _assert_error(body: dict[str, Any], code: str) -> None:
    assert body.get("errors"), body
    assert _codes(body) == [code] * len(body["errors"]), body
    for error in body["errors"]:
        assert isinstance(error["message"], str) and error["message"], body


def _assert_ok(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    return body["data"]


def _assert_gate_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A failure before execution: that status and `{"errors":[{message, extensions.code}]}`."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"errors"}, body
    [error] = body["errors"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["extensions"]["code"] == code
    return body


async def _gql_upload(
    tenant: Tenant,
    data: bytes,
    name: str = "hero.jpg",
    mime: str = "image/jpeg",
    **finalize: Any,
) -> dict[str, Any]:
    """presignUpload → PUT the bytes → finalizeUpload; returns finalizeUpload's answer."""
    body = await tenant.gql(
        _PRESIGN, {"input": {"originalName": name, "mimeType": mime, "size": len(data)}}
    )
    ticket = _assert_ok(body)["presignUpload"]
    put = await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert put.status_code == 200, put.text
    body = await tenant.gql(
        _FINALIZE,
        {
            "input": {
                "originalName": name,
                "mimeType": mime,
                "size": len(data),
                "storageKey": ticket["storageKey"],
                **finalize,
            }
        },
    )
    return _assert_ok(body)["finalizeUpload"]


async def _collection(tenant: Tenant, name: str, parent_id: str | None = None) -> str:
    body = await tenant.gql(_CREATE_COLLECTION, {"input": {"name": name, "parentId": parent_id}})
    return _assert_ok(body)["createCollection"]["collection"]["id"]


# --- queries ----------------------------------------------------------------------------


async def test_assets_pages_newest_first_with_totals(tenant: Tenant) -> None:
    ids = await seed_assets(tenant.org_id, [{} for _ in range(7)])
    newest_first = list(reversed(ids))

    page1 = _assert_ok(await tenant.gql(_ASSETS, {"pageSize": 3}))["assets"]
    assert [a["id"] for a in page1["items"]] == newest_first[:3]
    assert (page1["page"], page1["pageSize"], page1["total"], page1["totalPages"]) == (1, 3, 7, 3)

    page3 = _assert_ok(await tenant.gql(_ASSETS, {"pageSize": 3, "page": 3}))["assets"]
    assert [a["id"] for a in page3["items"]] == newest_first[6:]
    assert (page3["page"], page3["total"], page3["totalPages"]) == (3, 7, 3)

    beyond = _assert_ok(await tenant.gql(_ASSETS, {"pageSize": 3, "page": 4}))["assets"]
    assert beyond["items"] == [] and beyond["total"] == 7

    default = _assert_ok(await tenant.gql(_ASSETS))["assets"]
    assert default["pageSize"] == 50 and default["page"] == 1 and len(default["items"]) == 7


async def test_assets_empty_workspace_has_zero_pages(tenant: Tenant) -> None:
    page = _assert_ok(await tenant.gql(_ASSETS))["assets"]
    assert page == {"items": [], "page": 1, "pageSize": 50, "total": 0, "totalPages": 0}


async def test_assets_filters(tenant: Tenant) -> None:
    coll = await _collection(tenant, "Filters")
    sunset, sunrise, holiday, clip, percent = await seed_assets(
        tenant.org_id,
        [
            {"name": "Sunset_Beach.jpg", "tags": ["beach", "2024"], "collection_id": coll},
            {"name": "sunrise.png", "mime_type": "image/png", "tags": ["beach"]},
            {"name": "renamed.jpg", "original_name": "HOLIDAY.jpg", "tags": ["2024"]},
            {
                "name": "clip.mp4",
                "mime_type": "video/mp4",
                "media_type": "VIDEO",
                "tags": ["beach", "2024"],
                "collection_id": coll,
            },
            {"name": "100%.jpg"},
        ],
    )

    async def ids(**variables: Any) -> set[str]:
        page = _assert_ok(await tenant.gql(_ASSETS, variables))["assets"]
        assert page["total"] == len(page["items"])
        return {a["id"] for a in page["items"]}

    assert await ids(q="SUN") == {sunset, sunrise}
    assert await ids(q="holiday") == {holiday}  # originalName matches too
    assert await ids(q="_") == {sunset}  # `_` is literal, not a wildcard
    assert await ids(q="%") == {percent}  # `%` is literal too
    assert await ids(type="VIDEO") == {clip}
    assert await ids(type="IMAGE") == {sunset, sunrise, holiday, percent}
    assert await ids(tags=["beach"]) == {sunset, sunrise, clip}
    assert await ids(tags=["beach", "2024"]) == {sunset, clip}  # every listed tag
    assert await ids(tags=["Beach"]) == set()  # exact matching
    assert await ids(collectionId=coll) == {sunset, clip}
    assert await ids(collectionId=coll, type="IMAGE", tags=["2024"]) == {sunset}


async def test_asset_by_id_has_every_field(tenant: Tenant) -> None:
    [asset_id] = await seed_assets(
        tenant.org_id, [{"name": "one.jpg", "tags": ["a", "b"], "size": 1234}]
    )
    asset = _assert_ok(await tenant.gql(_ASSET, {"id": asset_id}))["asset"]
    assert asset["id"] == asset_id
    assert asset["name"] == asset["originalName"] == "one.jpg"
    assert asset["size"] == 1234
    assert asset["mimeType"] == "image/jpeg" and asset["mediaType"] == "IMAGE"
    assert asset["storageKey"].startswith(f"orgs/{tenant.org_id}/")
    assert asset["tags"] == ["a", "b"]
    assert asset["collectionId"] is None
    assert asset["locationX"] == 0 and asset["locationY"] == 0
    assert asset["uploadedAt"] == "2026-01-01T00:00:00.000Z"


async def test_collections_filters(tenant: Tenant) -> None:
    root = await _collection(tenant, "Root")
    b = await _collection(tenant, "B child", root)
    a = await _collection(tenant, "A child", root)
    other = await _collection(tenant, "Other")

    async def names(**variables: Any) -> list[str]:
        rows = _assert_ok(await tenant.gql(_COLLECTIONS, variables))["collections"]
        return [c["id"] for c in rows]

    assert await names() == [a, b, other, root]  # by name
    assert await names(topLevelOnly=True) == [other, root]
    assert await names(parentId=root) == [a, b]
    assert await names(parentId=a) == []
    assert await names(name="A child") == [a]
    assert await names(name="a child") == []  # exact match

    rows = _assert_ok(await tenant.gql(_COLLECTIONS, {"name": "B child"}))["collections"]
    assert rows == [
        {
            "id": b,
            "name": "B child",
            "parentId": root,
            "color": "#6366f1",
            "createdAt": rows[0]["createdAt"],
        }
    ]
    assert ISO_MS_Z.match(rows[0]["createdAt"])


async def test_unknown_or_malformed_collection_ids_are_not_found(tenant: Tenant) -> None:
    for bad in ("c" + "0" * 24, "not-an-id"):
        _assert_error(await tenant.gql(_COLLECTIONS, {"parentId": bad}), "NOT_FOUND")
        _assert_error(await tenant.gql(_ASSETS, {"collectionId": bad}), "NOT_FOUND")


def _configured(app: Any, plan: str) -> Any:
    """The limits the test app was configured with for `plan` (conftest may shrink quotas)."""
    return app.state.runtime.limits(Plan(plan))


async def test_viewer_reports_org_plan_scopes_and_usage(app: Any, make_tenant) -> None:
    tenant = await make_tenant(plan="BUSINESS", scopes="read,write")
    viewer = _assert_ok(await tenant.gql(_VIEWER))["viewer"]
    assert viewer["organization"]["id"] == tenant.org_id
    assert viewer["organization"]["name"].startswith("org-")
    assert viewer["plan"] == "BUSINESS"
    assert viewer["scopes"] == ["read", "write"]
    assert viewer["rateLimitPerSecond"] == _configured(app, "BUSINESS").rps
    assert viewer["storageQuota"] == _configured(app, "BUSINESS").storage_quota_bytes
    assert viewer["storageUsed"] == 0

    data = make_image()
    await _gql_upload(tenant, data)
    after = _assert_ok(await tenant.gql(_VIEWER))["viewer"]
    assert after["storageUsed"] == len(data)


async def test_storage_used_counts_pending_uploads_and_frees_deleted_assets(
    tenant: Tenant,
) -> None:
    async def used() -> int:
        return _assert_ok(await tenant.gql("{ viewer { storageUsed } }"))["viewer"]["storageUsed"]

    data = make_image()
    asset = (await _gql_upload(tenant, data))["asset"]
    assert await used() == len(data)

    await tenant.gql(
        _PRESIGN, {"input": {"originalName": "later.jpg", "mimeType": "image/jpeg", "size": 777}}
    )
    assert await used() == len(data) + 777  # presigned, not yet finalized

    _assert_ok(await tenant.gql(_DELETE, {"id": asset["id"]}))
    assert await used() == 777  # a deleted asset frees its space at once


async def test_viewer_quota_is_a_64_bit_long(app: Any, tenant: Tenant) -> None:
    quota = _configured(app, "ENTERPRISE").storage_quota_bytes
    viewer = _assert_ok(await tenant.gql("{ viewer { plan storageQuota } }"))["viewer"]
    assert viewer == {"plan": "ENTERPRISE", "storageQuota": quota}
    assert quota > 2**31  # beyond GraphQL's 32-bit Int: the Long scalar carries it


async def test_export_presets_listed_by_name(tenant: Tenant) -> None:
    for name in ("zeta", "alpha"):
        await tenant.gql(_UPSERT_PRESET, {"input": {"name": name, "format": "png"}})
    body = await tenant.gql("{ exportPresets { name format quality preserveAspect } }")
    assert _assert_ok(body)["exportPresets"] == [
        {"name": "alpha", "format": "PNG", "quality": 85, "preserveAspect": True},
        {"name": "zeta", "format": "PNG", "quality": 85, "preserveAspect": True},
    ]


async def test_api_keys_lists_the_workspace_keys(tenant: Tenant) -> None:
    extra = await tenant.add_key("read")
    keys = _assert_ok(await tenant.gql(_API_KEYS))["apiKeys"]
    by_id = {k["id"]: k for k in keys}
    assert set(by_id) == {tenant.key_id, extra.key_id}
    assert by_id[tenant.key_id]["scopes"] == ["read", "write", "admin"]
    assert by_id[extra.key_id]["scopes"] == ["read"]
    for k in keys:
        assert extra.key.startswith(k["prefix"]) or tenant.key.startswith(k["prefix"])
        assert k["prefix"].startswith("ak_live_")
        assert ISO_MS_Z.match(k["createdAt"])
        assert k["revokedAt"] is None
    assert tenant.key not in str(keys) and extra.key not in str(keys)  # never the secret


# --- mutations --------------------------------------------------------------------------


async def test_presign_put_finalize_then_finalize_again(tenant: Tenant) -> None:
    data = make_image(80, 60)
    body = await tenant.gql(
        _PRESIGN,
        {"input": {"originalName": "my hero.jpg", "mimeType": "image/jpeg", "size": len(data)}},
    )
    ticket = _assert_ok(body)["presignUpload"]
    assert ticket["method"] == "PUT"
    assert ticket["headers"] == {"Content-Type": "image/jpeg"}
    assert re.match(rf"^orgs/{tenant.org_id}/\d{{4}}/\d\d/.+hero\.jpg$", ticket["storageKey"])
    assert ISO_MS_Z.match(ticket["expiresAt"])

    put = await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert put.status_code == 200, put.text

    finalize = {
        "originalName": "my hero.jpg",
        "mimeType": "image/jpeg",
        "size": len(data),
        "storageKey": ticket["storageKey"],
        "tags": [" hero ", "2024", "hero", ""],
    }
    first = _assert_ok(await tenant.gql(_FINALIZE, {"input": finalize}))["finalizeUpload"]
    assert first["created"] is True
    asset = first["asset"]
    assert CUID.match(asset["id"])
    assert asset["name"] == asset["originalName"] == "my hero.jpg"
    assert asset["size"] == len(data)
    assert asset["mediaType"] == "IMAGE"
    assert (asset["width"], asset["height"]) == (80, 60)
    assert asset["tags"] == ["hero", "2024"]
    assert asset["storageKey"] == ticket["storageKey"]
    assert ISO_MS_Z.match(asset["uploadedAt"])

    again = _assert_ok(await tenant.gql(_FINALIZE, {"input": finalize}))["finalizeUpload"]
    assert again["created"] is False
    assert again["asset"]["id"] == asset["id"]

    page = _assert_ok(await tenant.gql(_ASSETS))["assets"]
    assert [a["id"] for a in page["items"]] == [asset["id"]]  # never a duplicate


async def test_finalize_without_upload_is_bad_request(tenant: Tenant) -> None:
    body = await tenant.gql(
        _PRESIGN, {"input": {"originalName": "x.jpg", "mimeType": "image/jpeg", "size": 10}}
    )
    key = _assert_ok(body)["presignUpload"]["storageKey"]
    body = await tenant.gql(
        _FINALIZE,
        {
            "input": {
                "originalName": "x.jpg",
                "mimeType": "image/jpeg",
                "size": 10,
                "storageKey": key,
            }
        },
    )
    _assert_error(body, "BAD_REQUEST")


async def test_presign_rejects_bad_declarations(tenant: Tenant) -> None:
    for declared in (
        {"originalName": "x.bmp", "mimeType": "image/bmp", "size": 10},
        {"originalName": "x.heic", "mimeType": "image/heic", "size": 10},
        {"originalName": "x.jpg", "mimeType": "image/jpeg", "size": 0},
        {"originalName": "x.jpg", "mimeType": "image/jpeg", "size": -5},
        {"originalName": "x.jpg", "mimeType": "image/jpeg", "size": 6 * 1024**3},  # > 5 GiB
        {"originalName": "x.jpg", "mimeType": "image/jpeg", "size": "12"},  # not a Long
        {"originalName": "  ", "mimeType": "image/jpeg", "size": 10},
    ):
        _assert_error(await tenant.gql(_PRESIGN, {"input": declared}), "BAD_REQUEST")


async def test_presign_takes_sizes_beyond_32_bits(tenant: Tenant) -> None:
    size = 3 * 1024**3  # > 2^31: a Long, within the 5 GiB single-PUT maximum
    declared = {"originalName": "big.mp4", "mimeType": "video/mp4", "size": size}
    _assert_ok(await tenant.gql(_PRESIGN, {"input": declared}))
    literal = (
        'mutation { presignUpload(input: {originalName: "big2.mp4", mimeType: "video/mp4", '
        f"size: {size}}}) {{ storageKey }} }}"
    )
    _assert_ok(await tenant.gql(literal))


async def test_update_asset_fields(tenant: Tenant) -> None:
    coll = await _collection(tenant, "Moves")
    [asset_id] = await seed_assets(tenant.org_id, [{"name": "a.jpg", "tags": ["old"]}])

    async def update(**changes: Any) -> dict[str, Any]:
        body = await tenant.gql(_UPDATE, {"id": asset_id, "input": changes})
        return _assert_ok(body)["updateAsset"]

    row = await update(name="  Renamed.jpg ", tags=["q2", " marketing", "q2"])
    assert row["name"] == "Renamed.jpg"
    assert row["originalName"] == "a.jpg"
    assert row["tags"] == ["q2", "marketing"]

    row = await update(collectionId=coll)
    assert row["collectionId"] == coll
    assert row["name"] == "Renamed.jpg"  # omitted fields stay as they are

    row = await update(locationX=12.5, locationY=-3)
    assert (row["locationX"], row["locationY"]) == (12.5, -3)
    assert row["collectionId"] == coll

    row = await update(collectionId=None)
    assert row["collectionId"] is None
    assert (row["locationX"], row["locationY"]) == (12.5, -3)

    # Reads see the change, and the tag index follows the new tags.
    assert _assert_ok(await tenant.gql(_ASSET, {"id": asset_id}))["asset"] == row
    tagged = _assert_ok(await tenant.gql(_ASSETS, {"tags": ["marketing"]}))["assets"]
    assert [a["id"] for a in tagged["items"]] == [asset_id]
    assert _assert_ok(await tenant.gql(_ASSETS, {"tags": ["old"]}))["assets"]["total"] == 0


async def test_update_asset_bad_input(tenant: Tenant) -> None:
    [asset_id] = await seed_assets(tenant.org_id, [{}])
    for changes in (
        {"tags": ["x" * 65]},
        {"tags": [f"t{i}" for i in range(51)]},
        {"name": "   "},
        {"collectionId": "c" + "1" * 24},  # unknown collection
    ):
        body = await tenant.gql(_UPDATE, {"id": asset_id, "input": changes})
        expected = "NOT_FOUND" if "collectionId" in changes else "BAD_REQUEST"
        _assert_error(body, expected)
    # null means "unset" only for collectionId; the others cannot be null.
    for field in ("name", "tags", "locationX", "locationY"):
        body = await tenant.gql(_UPDATE, {"id": asset_id, "input": {field: None}})
        _assert_error(body, "BAD_REQUEST")
    # Unknown input field: a validation error, the row untouched.
    body = await tenant.gql(_UPDATE, {"id": asset_id, "input": {"size": 1}})
    _assert_error(body, "BAD_REQUEST")
    asset = _assert_ok(await tenant.gql(_ASSET, {"id": asset_id}))["asset"]
    assert asset["tags"] == [] and asset["name"] == "asset-0000.jpg"


async def test_delete_asset(tenant: Tenant) -> None:
    keep, gone = await seed_assets(tenant.org_id, [{}, {}])
    body = await tenant.gql(_DELETE, {"id": gone})
    assert _assert_ok(body)["deleteAsset"] == {"id": gone, "deleted": True}

    _assert_error(await tenant.gql(_ASSET, {"id": gone}), "NOT_FOUND")
    page = _assert_ok(await tenant.gql(_ASSETS))["assets"]
    assert [a["id"] for a in page["items"]] == [keep] and page["total"] == 1
    _assert_error(await tenant.gql(_DELETE, {"id": gone}), "NOT_FOUND")
    _assert_error(await tenant.gql(_UPDATE, {"id": gone, "input": {"name": "x"}}), "NOT_FOUND")


async def test_create_collection_is_idempotent_on_name(tenant: Tenant) -> None:
    parent = await _collection(tenant, "Parent")
    first = await tenant.gql(
        _CREATE_COLLECTION, {"input": {"name": "Campaign Q2", "color": "#AABBCC"}}
    )
    created = _assert_ok(first)["createCollection"]
    assert created["created"] is True
    row = created["collection"]
    assert CUID.match(row["id"])
    assert (row["name"], row["color"], row["parentId"]) == ("Campaign Q2", "#aabbcc", None)
    assert ISO_MS_Z.match(row["createdAt"])

    second = await tenant.gql(
        _CREATE_COLLECTION,
        {"input": {"name": "Campaign Q2", "color": "#000000", "parentId": parent}},
    )
    again = _assert_ok(second)["createCollection"]
    assert again == {"created": False, "collection": row}  # existing row, unchanged

    names = _assert_ok(await tenant.gql(_COLLECTIONS, {"name": "Campaign Q2"}))["collections"]
    assert len(names) == 1


async def test_create_collection_concurrently_makes_one_row(tenant: Tenant) -> None:
    answers = await asyncio.gather(
        *(tenant.gql(_CREATE_COLLECTION, {"input": {"name": "Race"}}) for _ in range(6))
    )
    results = [_assert_ok(body)["createCollection"] for body in answers]
    assert sorted(r["created"] for r in results) == [False] * 5 + [True]
    assert len({r["collection"]["id"] for r in results}) == 1
    rows = _assert_ok(await tenant.gql(_COLLECTIONS, {"name": "Race"}))["collections"]
    assert len(rows) == 1


async def test_create_collection_bad_input(tenant: Tenant) -> None:
    for payload, code in (
        ({"name": "x", "color": "red"}, "BAD_REQUEST"),
        ({"name": "  "}, "BAD_REQUEST"),
        ({"name": "x", "parentId": "c" + "2" * 24}, "NOT_FOUND"),
        ({"name": "x", "parentId": "not-an-id"}, "NOT_FOUND"),
    ):
        _assert_error(await tenant.gql(_CREATE_COLLECTION, {"input": payload}), code)


async def test_upsert_export_preset(tenant: Tenant) -> None:
    spec = {
        "name": "shopify-thumb",
        "format": "webp",
        "quality": 80,
        "maxWidth": 800,
        "maxHeight": 800,
        "preserveAspect": True,
    }
    first = _assert_ok(await tenant.gql(_UPSERT_PRESET, {"input": spec}))["upsertExportPreset"]
    assert first["created"] is True
    preset = first["preset"]
    assert CUID.match(preset["id"])
    assert {k: preset[k] for k in spec} == {**spec, "format": "WEBP"}
    assert ISO_MS_Z.match(preset["createdAt"]) and ISO_MS_Z.match(preset["updatedAt"])

    body = await tenant.gql(_UPSERT_PRESET, {"input": {**spec, "format": "jpg", "quality": 70}})
    second = _assert_ok(body)["upsertExportPreset"]
    assert second["created"] is False
    assert second["preset"]["id"] == preset["id"]
    assert (second["preset"]["format"], second["preset"]["quality"]) == ("JPEG", 70)

    listed = _assert_ok(await tenant.gql("{ exportPresets { id format } }"))["exportPresets"]
    assert listed == [{"id": preset["id"], "format": "JPEG"}]


async def test_upsert_export_preset_bad_input(tenant: Tenant) -> None:
    for change in (
        {"format": "BMP"},
        {"quality": 0},
        {"quality": 101},
        {"maxWidth": 0},
        {"maxHeight": 16385},
        {"preserveAspect": False, "maxWidth": 100},  # exact size needs both dimensions
    ):
        body = await tenant.gql(_UPSERT_PRESET, {"input": {"name": "p", "format": "png", **change}})
        _assert_error(body, "BAD_REQUEST")
    assert _assert_ok(await tenant.gql("{ exportPresets { id } }"))["exportPresets"] == []


async def test_create_api_key_returns_a_working_key_with_its_scopes(tenant: Tenant) -> None:
    body = await tenant.gql(_CREATE_KEY, {"scopes": ["read"], "name": "reporting"})
    created = _assert_ok(body)["createApiKey"]
    assert re.match(r"^ak_live_[A-Za-z0-9]{32,}$", created["key"])
    record = created["apiKey"]
    assert CUID.match(record["id"])
    assert record["name"] == "reporting" and record["scopes"] == ["read"]
    assert created["key"].startswith(record["prefix"])
    assert ISO_MS_Z.match(record["createdAt"]) and record["revokedAt"] is None

    reader = Tenant(tenant.org_id, created["key"], record["id"], tenant.http)
    viewer = _assert_ok(await reader.gql("{ viewer { organization { id } scopes } }"))["viewer"]
    assert viewer == {"organization": {"id": tenant.org_id}, "scopes": ["read"]}
    _assert_error(await reader.gql(_CREATE_COLLECTION, {"input": {"name": "no"}}), "FORBIDDEN")

    listed = _assert_ok(await tenant.gql(_API_KEYS))["apiKeys"]
    assert record["id"] in {k["id"] for k in listed}


async def test_create_api_key_rejects_unknown_scope(tenant: Tenant) -> None:
    _assert_error(await tenant.gql(_CREATE_KEY, {"scopes": ["superuser"]}), "BAD_REQUEST")
    _assert_error(await tenant.gql(_CREATE_KEY, {"scopes": []}), "BAD_REQUEST")


async def test_revoked_key_is_refused_at_once(tenant: Tenant) -> None:
    victim = await tenant.add_key("read,write")
    _assert_ok(await victim.gql("{ viewer { plan } }"))  # now cached as valid

    body = await tenant.gql(_REVOKE_KEY, {"id": victim.key_id})
    revoked = _assert_ok(body)["revokeApiKey"]
    assert revoked["id"] == victim.key_id
    assert ISO_MS_Z.match(revoked["revokedAt"])

    r = await victim.post("/graphql", json={"query": "{ viewer { plan } }"})
    _assert_gate_error(r, 401, "UNAUTHENTICATED")
    r = await victim.get("/api/v1/assets")
    assert r.status_code == 401

    listed = _assert_ok(await tenant.gql(_API_KEYS))["apiKeys"]
    assert {k["id"]: k["revokedAt"] for k in listed}[victim.key_id] == revoked["revokedAt"]
    _assert_error(await tenant.gql(_REVOKE_KEY, {"id": "c" + "3" * 24}), "NOT_FOUND")


async def test_revoke_api_key_cannot_touch_another_org(make_tenant) -> None:
    a = await make_tenant()
    b = await make_tenant()
    body = await b.gql(_REVOKE_KEY, {"id": a.key_id})
    assert _codes(body) in (["NOT_FOUND"], ["FORBIDDEN"]), body
    _assert_ok(await a.gql("{ viewer { plan } }"))  # A's key still works


# --- errors: the gate (before execution) ------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer sk_live_" + "a" * 40,
        "Bearer ak_live_short",
        "Bearer ak_live_" + "Z" * 40,  # well-formed, unknown
    ],
)
async def test_unauthenticated_is_401_graphql_shaped(
    http: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    r = await http.post("/graphql", json={"query": "{ viewer { plan } }"}, headers=headers)
    _assert_gate_error(r, 401, "UNAUTHENTICATED")


async def test_free_plan_is_402(make_tenant) -> None:
    free = await make_tenant(plan="FREE")
    r = await free.post("/graphql", json={"query": "{ viewer { plan } }"})
    _assert_gate_error(r, 402, "PAYMENT_REQUIRED")


async def test_team_plan_is_rate_limited_after_its_burst(make_tenant) -> None:
    team = await make_tenant(plan="TEAM")
    answers = [await team.post("/graphql", json={"query": "{ viewer { plan } }"}) for _ in range(4)]
    assert [r.status_code for r in answers[:3]] == [200, 200, 200], [r.text for r in answers]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert "RateLimit-Remaining" in answers[0].headers
    assert "RateLimit-Reset" in answers[0].headers
    limited = answers[3]
    _assert_gate_error(limited, 429, "RATE_LIMITED")
    assert int(limited.headers["Retry-After"]) >= 1


async def test_refused_requests_do_not_spend_allowance(make_tenant) -> None:
    team = await make_tenant(plan="TEAM")
    query = {"query": "{ viewer { plan } }"}
    statuses = [(await team.post("/graphql", json=query)).status_code for _ in range(8)]
    assert statuses == [200] * 3 + [429] * 5, statuses
    # One request's worth of allowance (1/3 s at 3 rps) comes back, whatever the 429s did.
    await asyncio.sleep(0.45)
    r = await team.post("/graphql", json=query)
    assert r.status_code == 200, r.text


# --- errors: during execution -----------------------------------------------------------


async def test_read_only_key_cannot_mutate(tenant: Tenant) -> None:
    reader = await tenant.add_key("read")
    [asset_id] = await seed_assets(tenant.org_id, [{}])
    for query, variables in (
        (_CREATE_COLLECTION, {"input": {"name": "nope"}}),
        (_DELETE, {"id": asset_id}),
        (_UPDATE, {"id": asset_id, "input": {"name": "nope"}}),
        (_UPSERT_PRESET, {"input": {"name": "nope", "format": "png"}}),
        (_PRESIGN, {"input": {"originalName": "a.jpg", "mimeType": "image/jpeg", "size": 1}}),
    ):
        _assert_error(await reader.gql(query, variables), "FORBIDDEN")
    assert _assert_ok(await tenant.gql(_ASSET, {"id": asset_id}))["asset"]["name"] != "nope"
    assert _assert_ok(await tenant.gql(_COLLECTIONS))["collections"] == []


async def test_write_only_key_cannot_query(tenant: Tenant) -> None:
    writer = await tenant.add_key("write")
    for query in (_ASSETS, _COLLECTIONS, "{ exportPresets { id } }", _VIEWER):
        _assert_error(await writer.gql(query), "FORBIDDEN")
    # ... but it may mutate.
    _assert_ok(await writer.gql(_CREATE_COLLECTION, {"input": {"name": "w"}}))


async def test_api_key_management_needs_admin(tenant: Tenant) -> None:
    member = await tenant.add_key("read,write")
    _assert_error(await member.gql(_API_KEYS), "FORBIDDEN")
    _assert_error(await member.gql(_CREATE_KEY, {"scopes": ["read"]}), "FORBIDDEN")
    _assert_error(await member.gql(_REVOKE_KEY, {"id": tenant.key_id}), "FORBIDDEN")
    _assert_ok(await tenant.gql("{ viewer { plan } }"))  # the admin key was not revoked


async def test_unknown_and_malformed_ids_are_not_found(tenant: Tenant) -> None:
    for bad in ("c" + "9" * 24, "nope", "C" + "A" * 24, "", "c" + "0" * 30):
        _assert_error(await tenant.gql(_ASSET, {"id": bad}), "NOT_FOUND")
    _assert_error(await tenant.gql(_DELETE, {"id": "nope"}), "NOT_FOUND")


@pytest.mark.parametrize("page_size", [0, 201, -1])
async def test_page_size_out_of_range_is_bad_request(tenant: Tenant, page_size: int) -> None:
    _assert_error(await tenant.gql(_ASSETS, {"pageSize": page_size}), "BAD_REQUEST")


async def test_page_size_bounds_are_accepted(tenant: Tenant) -> None:
    for page_size in (1, 200):
        page = _assert_ok(await tenant.gql(_ASSETS, {"pageSize": page_size}))["assets"]
        assert page["pageSize"] == page_size


async def test_bad_filters_are_bad_request(tenant: Tenant) -> None:
    _assert_error(await tenant.gql(_ASSETS, {"page": 0}), "BAD_REQUEST")
    _assert_error(await tenant.gql(_ASSETS, {"tags": ["x" * 65]}), "BAD_REQUEST")
    _assert_error(await tenant.gql(_ASSETS, {"type": "AUDIO"}), "BAD_REQUEST")
    _assert_error(await tenant.gql("{ assets(type: AUDIO) { total } }"), "BAD_REQUEST")


async def test_parse_error_is_bad_request(tenant: Tenant) -> None:
    r = await tenant.post("/graphql", json={"query": "{ assets { items { id } "})
    assert r.status_code in (200, 400), r.text
    body = r.json()
    _assert_error(body, "BAD_REQUEST")
    assert body.get("data") is None


async def test_unknown_field_is_a_validation_error(tenant: Tenant) -> None:
    r = await tenant.post("/graphql", json={"query": "{ viewer { plan secretSauce } }"})
    assert r.status_code in (200, 400), r.text
    body = r.json()
    _assert_error(body, "BAD_REQUEST")
    assert body.get("data") is None
    assert "secretSauce" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "query",
    [
        "{ assets { items { ...Nope } } }",
        "{ ...Nope }",
        "query Q { viewer { plan } } query R { assets { items { ...Nope } } }",
    ],
)
async def test_unknown_fragment_is_a_validation_error(tenant: Tenant, query: str) -> None:
    """Strawberry's depth limiter raised KeyError on these (a 500); they are invalid GraphQL."""
    r = await tenant.post("/graphql", json={"query": query, "operationName": None})
    assert r.status_code in (200, 400), r.text
    body = r.json()
    _assert_error(body, "BAD_REQUEST")
    assert body.get("data") is None
    assert "Unknown fragment 'Nope'" in " ".join(e["message"] for e in body["errors"])


async def test_validation_errors_come_before_permissions(tenant: Tenant) -> None:
    writer = await tenant.add_key("write")
    body = await writer.gql("{ viewer { nope } }")
    _assert_error(body, "BAD_REQUEST")


# --- cross-organization isolation -------------------------------------------------------


async def test_other_org_cannot_see_or_touch_assets(make_tenant) -> None:
    a = await make_tenant()
    b = await make_tenant()
    [a_asset] = await seed_assets(a.org_id, [{"name": "secret.jpg"}])
    await seed_assets(b.org_id, [{"name": "mine.jpg"}])

    page = _assert_ok(await b.gql(_ASSETS, {"q": "secret"}))["assets"]
    assert page["items"] == [] and page["total"] == 0
    everything = _assert_ok(await b.gql(_ASSETS))["assets"]
    assert [x["name"] for x in everything["items"]] == ["mine.jpg"]

    _assert_error(await b.gql(_ASSET, {"id": a_asset}), "FORBIDDEN")
    _assert_error(await b.gql(_UPDATE, {"id": a_asset, "input": {"name": "x"}}), "FORBIDDEN")
    _assert_error(await b.gql(_DELETE, {"id": a_asset}), "FORBIDDEN")

    still = _assert_ok(await a.gql(_ASSET, {"id": a_asset}))["asset"]
    assert still["name"] == "secret.jpg"


async def test_other_org_cannot_use_a_collection(make_tenant) -> None:
    a = await make_tenant()
    b = await make_tenant()
    a_coll = await _collection(a, "A only")
    [b_asset] = await seed_assets(b.org_id, [{}])

    _assert_error(await b.gql(_ASSETS, {"collectionId": a_coll}), "FORBIDDEN")
    _assert_error(await b.gql(_COLLECTIONS, {"parentId": a_coll}), "FORBIDDEN")
    body = await b.gql(_CREATE_COLLECTION, {"input": {"name": "child", "parentId": a_coll}})
    _assert_error(body, "FORBIDDEN")
    body = await b.gql(_UPDATE, {"id": b_asset, "input": {"collectionId": a_coll}})
    _assert_error(body, "FORBIDDEN")
    assert _assert_ok(await b.gql(_COLLECTIONS))["collections"] == []


async def test_finalize_refuses_another_orgs_collection(make_tenant) -> None:
    a = await make_tenant()
    b = await make_tenant()
    a_coll = await _collection(a, "A's")
    data = make_image()
    body = await b.gql(
        _PRESIGN, {"input": {"originalName": "b.jpg", "mimeType": "image/jpeg", "size": len(data)}}
    )
    ticket = _assert_ok(body)["presignUpload"]
    put = await b.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert put.status_code == 200
    finalize = {
        "originalName": "b.jpg",
        "mimeType": "image/jpeg",
        "size": len(data),
        "storageKey": ticket["storageKey"],
        "collectionId": a_coll,
    }
    _assert_error(await b.gql(_FINALIZE, {"input": finalize}), "FORBIDDEN")


async def test_finalize_refuses_another_orgs_storage_key(make_tenant) -> None:
    a = await make_tenant()
    b = await make_tenant()
    data = make_image()
    body = await a.gql(
        _PRESIGN, {"input": {"originalName": "a.jpg", "mimeType": "image/jpeg", "size": len(data)}}
    )
    ticket = _assert_ok(body)["presignUpload"]
    put = await a.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert put.status_code == 200
    finalize = {
        "originalName": "a.jpg",
        "mimeType": "image/jpeg",
        "size": len(data),
        "storageKey": ticket["storageKey"],
    }
    _assert_error(await b.gql(_FINALIZE, {"input": finalize}), "FORBIDDEN")
    assert _assert_ok(await b.gql(_ASSETS))["assets"]["total"] == 0


# --- DataLoaders ------------------------------------------------------------------------

_RELATIONS = """
{
  assets(pageSize: 200) { items { id collection { id name parent { id } } } }
  collections { id name children { id } assets { id } parent { id } }
}"""

# Not the request's own: key lookups of the gate, and the polls of the app's background
# workers (webhook deliveries, media facts), which share the connection.
_NOT_THE_REQUESTS = re.compile(r"api_?key|webhook_deliveries|fact_jobs", re.IGNORECASE)


@contextlib.contextmanager
def _count_sql() -> Iterator[list[str]]:
    """Every SQL statement the default connection runs for the request (_NOT_THE_REQUESTS)."""
    from tortoise import connections

    conn = connections.get("default")
    statements: list[str] = []
    names = ("execute_query", "execute_query_dict", "execute_insert")
    originals = {name: getattr(conn, name) for name in names}

    def counting(original):
        async def run(query: str, *args: Any, **kwargs: Any) -> Any:
            if not _NOT_THE_REQUESTS.search(query):
                statements.append(query)
            return await original(query, *args, **kwargs)

        return run

    for name in names:
        setattr(conn, name, counting(originals[name]))
    try:
        yield statements
    finally:
        for name in names:
            conn.__dict__.pop(name, None)


async def _relations_fixture(tenant: Tenant, n_assets: int) -> None:
    """Two trees of collections; `n_assets` assets spread over every collection."""
    ids = []
    for tree in ("x", "y"):
        root = await _collection(tenant, f"{tree}-root")
        mid = await _collection(tenant, f"{tree}-mid", root)
        leaf = await _collection(tenant, f"{tree}-leaf", mid)
        ids += [root, mid, leaf]
    await seed_assets(
        tenant.org_id, [{"collection_id": ids[i % len(ids)]} for i in range(n_assets)]
    )


async def _statements_for_relations(tenant: Tenant) -> tuple[dict[str, Any], list[str]]:
    _assert_ok(await tenant.gql("{ viewer { plan } }"))  # warm the key cache
    with _count_sql() as statements:
        body = await tenant.gql(_RELATIONS)
    return _assert_ok(body), statements


async def test_relations_are_batched(make_tenant) -> None:
    small, large = await make_tenant(), await make_tenant()
    await _relations_fixture(small, 5)
    await _relations_fixture(large, 30)

    small_data, small_sql = await _statements_for_relations(small)
    large_data, large_sql = await _statements_for_relations(large)

    assert len(small_data["assets"]["items"]) == 5
    assert len(large_data["assets"]["items"]) == 30
    assert small_sql, "no SQL was counted: the counter is not wired to the connection"
    # Not strictly equal: the two root fields run concurrently and feed the same collection
    # loader, so which keys share a batch depends on which root query answers first (one
    # batch may split in two). Loading row by row would add ~25 statements here.
    assert abs(len(large_sql) - len(small_sql)) <= 1, (small_sql, large_sql)
    # assets: count + page; collections: list; one batch each for collection/parent,
    # children and assets-of-collection (a little slack for how batches fall in ticks).
    assert len(large_sql) <= 10, large_sql

    # The batched answers are right, not only cheap.
    by_id = {c["id"]: c for c in large_data["collections"]}
    for item in large_data["assets"]["items"]:
        coll = by_id[item["collection"]["id"]]
        assert item["collection"]["name"] == coll["name"]
        assert item["collection"]["parent"] == coll["parent"]
        assert item["id"] in {a["id"] for a in coll["assets"]}
    for coll in large_data["collections"]:
        for child in coll["children"]:
            assert by_id[child["id"]]["parent"] == {"id": coll["id"]}
    assert sum(len(c["assets"]) for c in large_data["collections"]) == 30


# --- depth, alias and token limits ------------------------------------------------------


def _nested_children(depth: int) -> str:
    return "{ collections " + "{ children " * depth + "{ id }" + " }" * depth + " }"


async def _refused_document(tenant: Tenant, query: str, wording: str) -> None:
    r = await tenant.post("/graphql", json={"query": query})
    assert r.status_code in (200, 400), r.text
    body = r.json()
    _assert_error(body, "BAD_REQUEST")
    assert body.get("data") is None
    assert wording in body["errors"][0]["message"].lower(), body


async def test_query_deeper_than_the_limit_is_refused(tenant: Tenant) -> None:
    await _refused_document(tenant, _nested_children(MAX_DEPTH), "depth")
    await _refused_document(tenant, _nested_children(MAX_DEPTH + 5), "depth")


async def test_depth_through_fragments_is_counted(tenant: Tenant) -> None:
    nested = "children { " * MAX_DEPTH + "id" + " }" * MAX_DEPTH
    fragment = "fragment Deep on Collection { " + nested + " }"
    await _refused_document(tenant, "{ collections { ...Deep } } " + fragment, "depth")


async def test_query_at_the_depth_limit_runs(tenant: Tenant) -> None:
    # collections → (MAX_DEPTH - 1) levels of children → id: the deepest field sits at MAX_DEPTH.
    body = await tenant.gql(_nested_children(MAX_DEPTH - 1))
    assert _assert_ok(body) == {"collections": []}


async def test_more_aliases_than_the_limit_are_refused(tenant: Tenant) -> None:
    fields = " ".join(f"a{i}: viewer {{ plan }}" for i in range(MAX_ALIASES + 1))
    await _refused_document(tenant, "{ " + fields + " }", "alias")


async def test_aliases_up_to_the_limit_are_fine(tenant: Tenant) -> None:
    fields = " ".join(f"a{i}: viewer {{ plan }}" for i in range(MAX_ALIASES))
    data = _assert_ok(await tenant.gql("{ " + fields + " }"))
    assert len(data) == MAX_ALIASES


async def test_document_over_the_token_limit_is_refused(tenant: Tenant) -> None:
    await _refused_document(tenant, "{ viewer { " + "plan " * MAX_TOKENS + "} }", "token")


async def test_the_deepest_real_query_works(tenant: Tenant) -> None:
    root = await _collection(tenant, "deep-root")
    child = await _collection(tenant, "deep-child", root)
    [asset_id] = await seed_assets(tenant.org_id, [{"collection_id": child}])
    query = """
    { collections(topLevelOnly: true) {
        id children { id assets { id collection { id parent { id name } } } } } }"""
    data = _assert_ok(await tenant.gql(query))
    assert data["collections"] == [
        {
            "id": root,
            "children": [
                {
                    "id": child,
                    "assets": [
                        {
                            "id": asset_id,
                            "collection": {
                                "id": child,
                                "parent": {"id": root, "name": "deep-root"},
                            },
                        }
                    ],
                }
            ],
        }
    ]


# --- transport --------------------------------------------------------------------------


async def test_introspection_needs_a_key(tenant: Tenant, http: httpx.AsyncClient) -> None:
    query = "{ __schema { types { name } } }"
    names = {t["name"] for t in _assert_ok(await tenant.gql(query))["__schema"]["types"]}
    assert {"Query", "Mutation", "Asset", "Collection", "DateTime", "Long"} <= names

    r = await http.post("/graphql", json={"query": query})
    _assert_gate_error(r, 401, "UNAUTHENTICATED")


async def test_graphiql_page_for_browsers_without_a_key(http: httpx.AsyncClient) -> None:
    r = await http.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "graphiql" in r.text.lower()


async def test_get_without_html_needs_a_key(http: httpx.AsyncClient) -> None:
    r = await http.get("/graphql", params={"query": "{ viewer { plan } }"})
    _assert_gate_error(r, 401, "UNAUTHENTICATED")


async def test_query_over_get(tenant: Tenant) -> None:
    r = await tenant.get("/graphql", params={"query": "{viewer{plan}}"})
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {"viewer": {"plan": "ENTERPRISE"}}}

    r = await tenant.get(
        "/graphql",
        params={
            "query": "query V($n: String) { collections(name: $n) { id } }",
            "variables": '{"n": "none"}',
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {"collections": []}}


async def test_get_with_malformed_variables_is_400(tenant: Tenant) -> None:
    r = await tenant.get(
        "/graphql", params={"query": "{ viewer { plan } }", "variables": "{not json"}
    )
    _assert_gate_error(r, 400, "BAD_REQUEST")


async def test_mutation_over_get_is_405(tenant: Tenant) -> None:
    mutation = 'mutation { createCollection(input: {name: "via-get"}) { created } }'
    r = await tenant.get("/graphql", params={"query": mutation})
    assert r.status_code == 405, r.text
    assert r.json()["errors"][0]["message"]
    assert _assert_ok(await tenant.gql(_COLLECTIONS, {"name": "via-get"}))["collections"] == []


async def test_malformed_json_body_is_400(tenant: Tenant) -> None:
    r = await tenant.post(
        "/graphql", content=b'{"query": "{ viewer', headers={"Content-Type": "application/json"}
    )
    _assert_gate_error(r, 400, "BAD_REQUEST")


@pytest.mark.parametrize(
    "body",
    [{}, {"variables": {}}, {"query": ""}, {"query": "   "}, {"query": 42}, [], "query"],
)
async def test_body_without_a_query_is_400(tenant: Tenant, body: Any) -> None:
    r = await tenant.post("/graphql", json=body)
    _assert_gate_error(r, 400, "BAD_REQUEST")


async def test_operation_name_picks_the_operation(tenant: Tenant) -> None:
    document = "query A { viewer { plan } } query B { exportPresets { id } }"
    r = await tenant.post("/graphql", json={"query": document, "operationName": "B"})
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {"exportPresets": []}}
    r = await tenant.post("/graphql", json={"query": document, "operationName": 7})
    _assert_gate_error(r, 400, "BAD_REQUEST")


async def test_variables_must_be_an_object(tenant: Tenant) -> None:
    r = await tenant.post("/graphql", json={"query": "{ viewer { plan } }", "variables": [1]})
    _assert_gate_error(r, 400, "BAD_REQUEST")


async def test_successful_answer_carries_rate_limit_headers(tenant: Tenant) -> None:
    r = await tenant.post("/graphql", json={"query": "{ viewer { plan } }"})
    assert r.status_code == 200
    assert r.headers["RateLimit-Limit"] == "100"
    assert int(r.headers["RateLimit-Remaining"]) >= 0
