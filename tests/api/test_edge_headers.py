"""Headers every response carries: request ids, and CORS for browser (Origin) requests."""

from __future__ import annotations

import re


async def test_request_id_is_made_or_echoed(tenant):
    r = await tenant.get("/api/v1/assets")
    assert r.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["x-request-id"])
    other = await tenant.get("/api/v1/assets")
    assert other.headers["x-request-id"] != r.headers["x-request-id"]
    r = await tenant.get("/api/v1/assets", headers={"X-Request-Id": "trace-" + "x" * 100})
    assert r.headers["x-request-id"] == "trace-" + "x" * 58  # at most 64 characters
    r = await tenant.http.get("/healthz", headers={"X-Request-Id": "abc"})
    assert r.headers["x-request-id"] == "abc"


async def test_no_origin_no_cors_headers_but_vary(tenant):
    r = await tenant.get("/api/v1/assets")
    assert "access-control-allow-origin" not in r.headers
    assert r.headers.get_list("vary") == ["Origin"]
    assert r.headers["ratelimit-limit"]  # the gate's headers are still there
    r = await tenant.http.get("/api/v1/assets")  # 401 from the gate, same edge headers
    assert r.status_code == 401
    assert r.headers["vary"] == "Origin" and "x-request-id" in r.headers


async def test_browser_request_gets_cors_headers(tenant):
    origin = {"Origin": "https://app.example.com"}
    r = await tenant.get("/api/v1/assets", headers=origin)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"ratelimit-remaining", "x-request-id", "retry-after"} <= exposed
    assert "Origin" in r.headers["vary"]
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["x-request-id"])


async def test_preflight(tenant):
    r = await tenant.http.options(
        "/api/v1/assets",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert r.status_code == 200
    assert "PATCH" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-max-age"] == "600"
