"""`total` stays exact while listing totals are remembered (services/asset_totals.py).

Each check compares a full page's `total` (which may come from memory) with the number of
items a page big enough to hold them all returns (always read fresh). The COUNTs run are
counted too, so these tests fail both if a stale total is served and if totals are never
remembered (which would make the staleness checks vacuous).
"""

from __future__ import annotations

import datetime as dt

import pytest
from tortoise.transactions import in_transaction

from pixelwand.models import Asset, AssetTag
from pixelwand.services import assets as asset_service
from tests.api.test_media import wait_for_facts
from tests.helpers import make_image, seed_assets, upload

FILTERS = ["", "&type=IMAGE", "&tags=red", "&q=SUN", "&tags=red,big&q=sun&type=IMAGE"]


@pytest.fixture
def counts(monkeypatch) -> list[str]:
    """The organization ids of the COUNTs run by listings (monkeypatched spy)."""
    seen: list[str] = []
    real = asset_service.count_sql

    def spy(dialect, org_id, where):
        seen.append(org_id)
        return real(dialect, org_id, where)

    monkeypatch.setattr(asset_service, "count_sql", spy)
    return seen


async def _total(tenant, query: str) -> int:
    r = await tenant.get(f"/api/v1/assets?pageSize=1{query}")
    assert r.status_code == 200, r.text
    return r.json()["total"]


async def _truth(tenant, query: str) -> int:
    r = await tenant.get(f"/api/v1/assets?pageSize=200{query}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["items"]) < 200
    return len(body["items"])


async def _check_all(tenant, counts: list[str]) -> dict[str, int]:
    """Every filter's remembered total equals the truth; a second read runs no COUNT."""
    out = {}
    for query in FILTERS:
        first = await _total(tenant, query)
        before = len(counts)
        assert await _total(tenant, query) == first
        assert len(counts) == before, f"{query!r}: the second read counted again"
        assert first == await _truth(tenant, query), query
        out[query] = first
    return out


async def _seed(tenant) -> list[str]:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return await seed_assets(
        tenant.org_id,
        [
            *[
                {"name": f"sunset-{i}.jpg", "tags": ["red", "big"], "uploaded_at": base}
                for i in range(4)
            ],
            {"name": "sun.mp4", "tags": ["red", "big"], "media_type": "VIDEO"},
            {"name": "moon.jpg", "tags": ["red"]},
            {"name": "tree.jpg", "tags": []},
        ],
    )


async def test_total_follows_every_write_through_the_api(tenant, counts):
    ids = await _seed(tenant)
    totals = await _check_all(tenant, counts)
    assert totals == {
        "": 7,
        "&type=IMAGE": 6,
        "&tags=red": 6,
        "&q=SUN": 5,
        "&tags=red,big&q=sun&type=IMAGE": 4,
    }
    r = await tenant.patch(f"/api/v1/assets/{ids[0]}", json={"tags": ["red"]})
    assert r.status_code == 200
    assert (await _check_all(tenant, counts))["&tags=red,big&q=sun&type=IMAGE"] == 3
    r = await tenant.patch(f"/api/v1/assets/{ids[5]}", json={"name": "Sunny.jpg"})
    assert r.status_code == 200
    assert (await _check_all(tenant, counts))["&q=SUN"] == 6
    r = await tenant.delete(f"/api/v1/assets/{ids[2]}")
    assert r.status_code == 200
    assert (await _check_all(tenant, counts))[""] == 6
    uploaded = await upload(tenant, make_image(), "sunrise.jpg", "image/jpeg", tags=["red", "big"])
    # The facts worker writes to the new asset once after finalize (contentHash is a filter,
    # so that write invalidates totals too): let it land before reads are compared.
    await wait_for_facts(tenant, uploaded["id"])
    totals = await _check_all(tenant, counts)
    assert (totals[""], totals["&tags=red,big&q=sun&type=IMAGE"]) == (7, 3)


async def _retag(org_id: str, asset_id: str, tags: list[str]) -> None:
    """What a tag change writes, done directly: the row's JSON and its tag rows (SQLite
    filters on the rows, PostgreSQL on the JSON)."""
    async with in_transaction():
        await Asset.filter(id=asset_id).update(tags=tags)
        await AssetTag.filter(asset_id=asset_id).delete()
        for tag in tags:
            await AssetTag.create(asset_id=asset_id, organization_id=org_id, tag=tag)


async def test_writes_made_outside_the_api_are_seen(tenant, counts):
    """Another process, the sweeper or a manual fix: only the database knows of them."""
    ids = await _seed(tenant)
    await _check_all(tenant, counts)
    now = dt.datetime.now(dt.UTC)
    await Asset.filter(id=ids[0]).update(deleted_at=now)
    assert (await _check_all(tenant, counts))[""] == 6
    await _retag(tenant.org_id, ids[1], ["red"])
    assert (await _check_all(tenant, counts))["&tags=red,big&q=sun&type=IMAGE"] == 2
    await _retag(tenant.org_id, ids[5], ["red", "big"])
    await Asset.filter(id=ids[5]).update(name="sunny.jpg")
    assert (await _check_all(tenant, counts))["&tags=red,big&q=sun&type=IMAGE"] == 3
    await Asset.filter(id=ids[3]).delete()
    assert (await _check_all(tenant, counts))[""] == 5


async def test_another_organizations_writes_keep_totals(make_tenant, counts):
    first, second = await make_tenant(), await make_tenant()
    await _seed(first)
    await _check_all(first, counts)
    await _seed(second)
    before = len(counts)
    assert await _total(first, "&tags=red") == 6
    assert len(counts) == before


async def test_short_and_empty_pages_need_no_count(tenant, counts):
    await _seed(tenant)
    r = await tenant.get("/api/v1/assets?pageSize=50&tags=red")
    assert (r.json()["total"], r.json()["totalPages"]) == (6, 1)
    r = await tenant.get("/api/v1/assets?pageSize=50&tags=nothing")
    assert r.json() == {"items": [], "page": 1, "pageSize": 50, "total": 0, "totalPages": 0}
    r = await tenant.get("/api/v1/assets?pageSize=5&page=2&tags=red")
    assert (len(r.json()["items"]), r.json()["total"]) == (1, 6)
    assert counts == []
    r = await tenant.get("/api/v1/assets?pageSize=5&page=9&tags=red")
    assert (r.json()["items"], r.json()["total"], r.json()["totalPages"]) == ([], 6, 2)
