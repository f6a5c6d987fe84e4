"""/api/v1/openapi.json: valid OpenAPI 3.1, public, and the same set of routes as the app.

That every answer the suite gets matches the document is checked on every request
(tests/support/openapi_check.py, installed by the `http` fixture); the tests at the end
show that check refusing what it must refuse.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from compat_rest.openapi import PREFIX, document
from pixelwand.app import create_app
from tests.conftest import Backend, make_settings
from tests.support.openapi_check import OpenAPIMismatch, api_document

ASSET = {
    "id": "c" + "a" * 24,
    "name": "hero.jpg",
    "originalName": "hero.jpg",
    "size": 10,
    "mimeType": "image/jpeg",
    "mediaType": "IMAGE",
    "storageKey": "orgs/x/hero.jpg",
    "tags": [],
    "collectionId": None,
    "locationX": 0,
    "locationY": 0,
    "uploadedAt": "2026-04-22T21:00:00.000Z",
    "width": 1,
    "height": 1,
    "contentHash": None,
    "thumbhash": None,
    "blurhash": None,
    "dominantColor": None,
    "durationSeconds": None,
    "videoCodec": None,
    "frameRate": None,
    "focalPoint": None,
}
RATE = {"RateLimit-Limit": "100", "RateLimit-Remaining": "99", "RateLimit-Reset": "0"}


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_api_route_is_documented_and_every_documented_route_exists(
    tmp_path: Path,
) -> None:
    backend = Backend("sqlite-local", f"sqlite://{tmp_path}/db.sqlite", f"local:{tmp_path}/s")
    app = create_app(make_settings(backend, tmp_path), run_sweeper=False)
    served = {
        (method.lower(), route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith(PREFIX + "/")
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(method, path) for path, item in document()["paths"].items() for method in item}
    assert served - documented == set(), "routes missing from the document"
    assert documented - served == set(), "documented routes the app does not serve"


def test_every_operation_documents_its_errors_and_parameters() -> None:
    for path, item in document()["paths"].items():
        assert path.startswith(PREFIX + "/"), "paths are written in full"
        for method, op in item.items():
            if op.get("security") == []:
                continue
            statuses = set(op["responses"])
            assert {"401", "402", "403", "429", "503"} <= statuses, (method, path)
            if "{id}" in path:
                assert "404" in statuses
                assert any(p["in"] == "path" and p["name"] == "id" for p in op["parameters"])
            if "requestBody" in op:
                assert "400" in statuses
            ok = [s for s in statuses if s.startswith("2")]
            assert ok, (method, path)
            for status in ok:
                headers = op["responses"][status]["headers"]
                assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(headers)
            assert "Retry-After" in op["responses"]["429"]["headers"]


def _inline_enums(node: object, name: str, out: dict[str, set[tuple[str, ...]]]) -> None:
    """Every inline `enum` under `node`, by the property or parameter name that holds it."""
    if isinstance(node, dict):
        if "enum" in node:
            out.setdefault(name, set()).add(tuple(node["enum"]))
        if node.get("in") in ("query", "path", "header") and "schema" in node:
            _inline_enums(node["schema"], node["name"], out)
            return
        for key, value in node.items():
            if key == "properties":
                for prop, schema in value.items():
                    _inline_enums(schema, prop, out)
            else:
                _inline_enums(value, name, out)
    elif isinstance(node, list):
        for value in node:
            _inline_enums(value, name, out)


def test_one_name_one_enum_for_client_generators() -> None:
    """Generators (openapi-python-client, openapi-generator) name an inline enum after its
    operation or schema and its field: `exportUrl`'s `format` parameter and the `ExportUrl`
    schema's `format` both become `ExportUrlFormat`. With two different value lists the
    generator drops the operation, so a field name never holds two different inline enums:
    differing lists are named component schemas."""
    doc = document()
    enums: dict[str, set[tuple[str, ...]]] = {}
    _inline_enums(doc["paths"], "", enums)
    for schema in doc["components"]["schemas"].values():
        if "enum" not in schema:  # a named enum is what the fix is
            _inline_enums(schema, "", enums)
    assert {name: lists for name, lists in enums.items() if len(lists) > 1} == {}


@pytest.mark.backends("sqlite-local")
async def test_served_without_a_key_and_without_rate_limits(http: httpx.AsyncClient) -> None:
    for _ in range(150):  # past any plan's burst
        r = await http.get(PREFIX + "/openapi.json")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert "ratelimit-limit" not in r.headers
    assert orjson.loads(r.content) == document()


@pytest.mark.backends("sqlite-local")
async def test_only_the_document_is_public(http: httpx.AsyncClient) -> None:
    r = await http.get(PREFIX + "/assets")
    assert r.status_code == 401
    r = await http.get(PREFIX + "/openapi.json/x")
    assert r.status_code == 401


# --- the check the suite runs on every answer ----------------------------------------------


def _problems(method: str, path: str, status: int, body: object, **headers: str) -> list[str]:
    content = orjson.dumps(body)
    all_headers = httpx.Headers({"content-type": "application/json", **headers})
    return api_document().problems(method, path, status, all_headers, content)


def test_the_check_accepts_a_documented_answer() -> None:
    assert _problems("GET", f"{PREFIX}/assets/{ASSET['id']}", 200, ASSET, **RATE) == []
    page = {"items": [ASSET], "page": 1, "pageSize": 50, "total": 1, "totalPages": 1}
    assert _problems("GET", f"{PREFIX}/assets", 200, page, **RATE) == []
    assert _problems("GET", f"{PREFIX}/nope", 404, {"error": "not found"}) == []
    assert _problems("PUT", f"{PREFIX}/assets", 405, {"error": "method not allowed"}) == []


@pytest.mark.parametrize(
    ("status", "body", "headers", "why"),
    [
        (418, {"error": "teapot"}, RATE, "status 418 not documented"),
        (200, {**ASSET, "secret": 1}, RATE, "Additional properties"),
        (200, {**ASSET, "uploadedAt": "2026-04-22T21:00:00Z"}, RATE, "does not match"),
        (200, {k: v for k, v in ASSET.items() if k != "tags"}, RATE, "'tags' is a required"),
        (200, ASSET, {}, "header RateLimit-Limit missing"),
        (400, {"message": "x"}, RATE, "'error' is a required"),
    ],
)
def test_the_check_refuses_an_undocumented_answer(
    status: int, body: object, headers: dict[str, str], why: str
) -> None:
    problems = _problems("GET", f"{PREFIX}/assets/{ASSET['id']}", status, body, **headers)
    assert any(why in p for p in problems), problems


async def test_the_hook_fails_the_request() -> None:
    from tests.support.openapi_check import check_response

    request = httpx.Request("GET", f"http://testserver{PREFIX}/collections")
    response = httpx.Response(500, json={"error": "internal error"}, request=request)
    with pytest.raises(OpenAPIMismatch, match="status 500 not documented"):
        await check_response(response)
