"""/api/v1/collections: idempotent create, filters, nesting, isolation."""

from __future__ import annotations

import asyncio
import re

import pytest

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_create_then_idempotent(tenant):
    r = await tenant.post(
        "/api/v1/collections", json={"name": "Campaign Q2", "color": "#6366f1", "parentId": None}
    )
    assert r.status_code == 201
    col = r.json()
    assert set(col) == {"id", "name", "parentId", "color", "createdAt"}
    assert col["name"] == "Campaign Q2" and col["parentId"] is None and col["color"] == "#6366f1"
    assert TS_RE.match(col["createdAt"])
    again = await tenant.post(
        "/api/v1/collections", json={"name": "Campaign Q2", "color": "#000000"}
    )
    assert again.status_code == 200
    assert again.json() == col  # unchanged
    listing = await tenant.get("/api/v1/collections")
    assert listing.json() == {"collections": [col]}


async def test_twenty_concurrent_identical_creates_make_one_row(tenant):
    answers = await asyncio.gather(
        *(tenant.post("/api/v1/collections", json={"name": "Race"}) for _ in range(20))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 19 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len((await tenant.get("/api/v1/collections?name=Race")).json()["collections"]) == 1


async def test_default_color(tenant):
    r = await tenant.post("/api/v1/collections", json={"name": "Plain"})
    assert r.json()["color"] == "#6366f1"


async def test_nesting_and_filters(tenant):
    root = (await tenant.post("/api/v1/collections", json={"name": "Root"})).json()
    child = (
        await tenant.post("/api/v1/collections", json={"name": "Child", "parentId": root["id"]})
    ).json()
    other = (await tenant.post("/api/v1/collections", json={"name": "Other"})).json()
    assert child["parentId"] == root["id"]

    async def names(query: str) -> list[str]:
        r = await tenant.get(f"/api/v1/collections{query}")
        assert r.status_code == 200, r.text
        return [c["name"] for c in r.json()["collections"]]

    assert await names("") == ["Child", "Other", "Root"]
    assert await names("?parentId=null") == ["Other", "Root"]
    assert await names(f"?parentId={root['id']}") == ["Child"]
    assert await names(f"?parentId={other['id']}") == []
    assert await names("?name=Child") == ["Child"]
    assert await names("?name=child") == []  # exact
    assert await names("?name=Root&parentId=null") == ["Root"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "name"),
        ({"name": ""}, 400, "name"),
        ({"name": "   "}, 400, "name"),
        ({"name": "x" * 201}, 400, "200"),
        ({"name": 5}, 400, "name"),
        ({"name": "a", "color": "red"}, 400, "color"),
        ({"name": "a", "color": "#12345"}, 400, "color"),
        ({"name": "a", "icon": "x"}, 400, "'icon'"),
        ({"name": "a", "parentId": "c" + "2" * 24}, 404, "not found"),
        ({"name": "a", "parentId": "bogus"}, 404, "not found"),
    ],
)
async def test_create_rejects_bad_input(tenant, body, status, message):
    r = await tenant.post("/api/v1/collections", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


async def test_parent_of_another_org_is_403(make_tenant):
    a = await make_tenant()
    b = await make_tenant()
    col_b = (await b.post("/api/v1/collections", json={"name": "B"})).json()
    r = await a.post("/api/v1/collections", json={"name": "A", "parentId": col_b["id"]})
    assert r.status_code == 403
    assert (await a.get(f"/api/v1/collections?parentId={col_b['id']}")).status_code == 403
    assert (await a.get("/api/v1/collections")).json() == {"collections": []}


async def test_same_name_in_two_orgs_is_two_collections(make_tenant):
    a = await make_tenant()
    b = await make_tenant()
    ra = await a.post("/api/v1/collections", json={"name": "Shared"})
    rb = await b.post("/api/v1/collections", json={"name": "Shared"})
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"]
