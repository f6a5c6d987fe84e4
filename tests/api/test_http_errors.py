"""Every failure is JSON `{"error": ...}`, with the right status, on every surface."""

from __future__ import annotations

import pytest


async def test_unknown_route_is_json_404(tenant):
    r = await tenant.get("/api/v1/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "not found"}


async def test_unknown_route_without_key_is_401(http):
    r = await http.get("/api/v1/nope")
    assert r.status_code == 401


async def test_wrong_method_is_json_405(tenant):
    r = await tenant.http.request("PUT", "/api/v1/assets", headers=tenant.auth)
    assert r.status_code == 405
    assert r.json() == {"error": "method not allowed"}


@pytest.mark.parametrize("url", ["/api/v1/assets", "/api/v1/collections", "/api/v1/export-presets"])
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", b"null", b'"text"'])
async def test_malformed_json_is_400(tenant, url, body):
    r = await tenant.post(url, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "JSON" in r.json()["error"]


async def test_healthz_and_readyz(http):
    r = await http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await http.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "storage": "ok"}


async def test_cors_preflight_allows_authorization(http):
    r = await http.options(
        "/api/v1/assets",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "https://app.example")
    assert "authorization" in r.headers["access-control-allow-headers"].lower()


async def test_request_id_is_echoed(tenant):
    r = await tenant.get("/api/v1/assets", headers={"X-Request-Id": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    r = await tenant.get("/api/v1/assets")
    assert len(r.headers["x-request-id"]) >= 8
