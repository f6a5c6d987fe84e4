"""401 → 402 → 429 → 403 on /api/v1, and the rate-limit headers."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from pixelwand.plans import Plan
from pixelwand.services import organizations


@pytest.mark.parametrize(
    "header",
    [
        None,
        "ak_live_" + "a" * 40,  # no Bearer
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "Bearer sk_live_" + "a" * 40,  # wrong prefix
        "Bearer ak_live_short",
        "Bearer ak_live_" + "b" * 40,  # well-formed, unknown
    ],
)
async def test_missing_malformed_or_unknown_key_is_401(http, header):
    headers = {"Authorization": header} if header is not None else {}
    r = await http.get("/api/v1/assets", headers=headers)
    assert r.status_code == 401
    assert set(r.json()) == {"error"} and r.json()["error"]
    assert "ratelimit-limit" not in r.headers


async def test_revoked_key_is_401_at_once(tenant):
    other = await tenant.add_key("read")
    assert (await other.get("/api/v1/assets")).status_code == 200
    r = await tenant.gql(
        "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }", {"id": other.key_id}
    )
    assert r["data"]["revokeApiKey"]["revokedAt"]
    r = await other.get("/api/v1/assets")
    assert r.status_code == 401
    assert "revoked" in r.json()["error"]


async def test_free_plan_is_402_on_every_route(make_tenant):
    free = await make_tenant(plan="FREE")
    for method, url in [
        ("GET", "/api/v1/assets"),
        ("POST", "/api/v1/assets"),
        ("GET", "/api/v1/collections"),
        ("GET", "/api/v1/export-presets"),
        ("DELETE", "/api/v1/assets/c" + "0" * 24),
    ]:
        r = await free.http.request(method, url, headers=free.auth)
        assert r.status_code == 402, (method, url)
        assert "upgrade" in r.json()["error"]


async def test_plan_change_is_seen_within_a_second(make_tenant):
    t = await make_tenant(plan="TEAM")
    assert (await t.get("/api/v1/assets")).status_code == 200
    await organizations.set_plan(t.org_id, Plan.FREE)
    await asyncio.sleep(1.1)
    assert (await t.get("/api/v1/assets")).status_code == 402


@pytest.mark.parametrize(("plan", "rps"), [("TEAM", 3), ("BUSINESS", 10), ("ENTERPRISE", 100)])
async def test_rate_limit_per_plan(make_tenant, plan, rps):
    t = await make_tenant(plan=plan)
    started = time.monotonic()
    answers = await asyncio.gather(*(t.get("/api/v1/collections") for _ in range(2 * rps + 5)))
    elapsed = time.monotonic() - started
    statuses = [a.status_code for a in answers]
    # Burst = one second's allowance, plus what is replenished while the requests run.
    assert rps <= statuses.count(200) <= rps + math.ceil(elapsed * rps) + 1, (elapsed, statuses)
    assert set(statuses) == {200, 429}
    limited = [a for a in answers if a.status_code == 429]
    assert limited, statuses
    r = limited[0]
    assert r.json()["error"].startswith("rate limit exceeded")
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-limit"] == str(rps)
    assert r.headers["ratelimit-remaining"] == "0"


async def test_rate_limit_is_per_key(make_tenant):
    t = await make_tenant(plan="TEAM")
    other = await t.add_key("read")
    for _ in range(3):
        assert (await t.get("/api/v1/collections")).status_code == 200
    assert (await t.get("/api/v1/collections")).status_code == 429
    assert (await other.get("/api/v1/collections")).status_code == 200


async def test_rate_limit_headers_on_success(make_tenant):
    t = await make_tenant(plan="BUSINESS")
    r = await t.get("/api/v1/assets")
    assert r.status_code == 200
    assert r.headers["ratelimit-limit"] == "10"
    assert r.headers["ratelimit-remaining"] == "9"
    assert int(r.headers["ratelimit-reset"]) >= 0
    r = await t.get("/api/v1/assets")
    assert r.headers["ratelimit-remaining"] == "8"


async def test_refused_requests_spend_no_allowance(make_tenant, http):
    t = await make_tenant(plan="TEAM")
    for _ in range(5):
        await http.get("/api/v1/assets", headers={"Authorization": "Bearer ak_live_" + "z" * 40})
    r = await t.get("/api/v1/assets")
    assert r.headers["ratelimit-remaining"] == "2"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/api/v1/assets", {"mode": "presign"}),
        ("PATCH", "/api/v1/assets/c" + "0" * 24, {"name": "x"}),
        ("DELETE", "/api/v1/assets/c" + "0" * 24, None),
        ("POST", "/api/v1/collections", {"name": "x"}),
        ("POST", "/api/v1/export-presets", {"name": "x", "format": "WEBP"}),
    ],
)
async def test_read_only_key_cannot_write(make_tenant, method, url, body):
    t = await make_tenant(scopes="read")
    r = await t.http.request(method, url, headers=t.auth, json=body)
    assert r.status_code == 403
    assert "write" in r.json()["error"]


async def test_scope_is_checked_before_input(make_tenant):
    t = await make_tenant(scopes="read")
    r = await t.http.post(
        "/api/v1/assets", headers={**t.auth, "content-type": "application/json"}, content=b"{nope"
    )
    assert r.status_code == 403


@pytest.mark.parametrize("url", ["/api/v1/assets", "/api/v1/collections", "/api/v1/export-presets"])
async def test_write_only_key_cannot_read(make_tenant, url):
    t = await make_tenant(scopes="write")
    r = await t.get(url)
    assert r.status_code == 403
    assert "read" in r.json()["error"]


async def test_admin_scope_does_not_imply_read(make_tenant):
    t = await make_tenant(scopes="admin")
    assert (await t.get("/api/v1/assets")).status_code == 403
