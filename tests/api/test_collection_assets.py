"""Collection.assets: each collection's newest live assets (uploadedAt, then id, both
descending), at most 500 and at most `first:`, batched for every collection of a request;
the compiled path and graphql-core answer alike."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from tests.conftest import Tenant
from tests.helpers import seed_assets

_CREATE = """
mutation($input: CreateCollectionInput!) { createCollection(input: $input) { collection { id } } }
"""


async def _collection(tenant: Tenant, name: str) -> str:
    body = await tenant.gql(_CREATE, {"input": {"name": name}})
    assert "errors" not in body, body
    return body["data"]["createCollection"]["collection"]["id"]


def _rows(collection_id: str, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Rows in shuffled order, with many equal timestamps (so that id decides)."""
    base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    return [
        {
            "collection_id": collection_id,
            "uploaded_at": base + dt.timedelta(seconds=rng.randrange(60), milliseconds=5),
        }
        for _ in range(count)
    ]


def _newest_first(ids: list[str], rows: list[dict[str, Any]]) -> list[str]:
    keyed = sorted(zip(ids, rows, strict=True), key=lambda p: (p[1]["uploaded_at"], p[0]))
    return [asset_id for asset_id, _ in reversed(keyed)]


async def test_newest_first_cut_per_collection(tenant: Tenant, make_tenant: Any) -> None:
    rng = random.Random(11)
    crowded = await _collection(tenant, "crowded")
    small = await _collection(tenant, "small")
    empty = await _collection(tenant, "empty")
    crowded_rows = _rows(crowded, 530, rng)
    crowded_ids = await seed_assets(tenant.org_id, crowded_rows)
    small_rows = _rows(small, 4, rng)
    small_ids = await seed_assets(tenant.org_id, small_rows)
    # Deleted assets are not listed; neither are another organization's rows, even ones
    # that name this collection.
    expected = _newest_first(crowded_ids, crowded_rows)
    for deleted in (expected[0], expected[7]):
        r = await tenant.delete(f"/api/v1/assets/{deleted}")
        assert r.status_code == 200, r.text
    other = await make_tenant()
    await seed_assets(other.org_id, _rows(crowded, 3, rng))
    live = [i for i in expected if i not in (expected[0], expected[7])]

    query = """{ collections { id assets { id uploadedAt } first3: assets(first: 3) { id }
        none: assets(first: 0) { id } } }"""
    body = await tenant.gql(query)
    assert "errors" not in body, body
    found = {c["id"]: c for c in body["data"]["collections"]}
    listed = [a["id"] for a in found[crowded]["assets"]]
    assert listed == live[:500]
    times = [a["uploadedAt"] for a in found[crowded]["assets"]]
    assert times == sorted(times, reverse=True)
    assert [a["id"] for a in found[crowded]["first3"]] == live[:3]
    assert found[crowded]["none"] == []
    assert [a["id"] for a in found[small]["assets"]] == _newest_first(small_ids, small_rows)
    assert [a["id"] for a in found[small]["first3"]] == _newest_first(small_ids, small_rows)[:3]
    assert found[empty]["assets"] == [] and found[empty]["first3"] == []


async def test_compiled_and_graphql_core_answer_alike(tenant: Tenant) -> None:
    """The same selection answered by the compiled plan (plain fields under
    Collection.assets) and by graphql-core (Asset.collection below it is not compiled)."""
    rng = random.Random(12)
    ids = [await _collection(tenant, f"c{i}") for i in range(3)]
    for i, collection_id in enumerate(ids):
        await seed_assets(tenant.org_id, _rows(collection_id, 40 * i, rng))
    fields = "id name originalName size mimeType mediaType tags uploadedAt width height"
    compiled = await tenant.gql(f"{{ collections {{ id name assets(first: 25) {{ {fields} }} }} }}")
    reference = await tenant.gql(
        f"{{ collections {{ id name assets(first: 25) {{ {fields} collection {{ id }} }} }} }}"
    )
    assert "errors" not in compiled and "errors" not in reference, (compiled, reference)
    for collection in reference["data"]["collections"]:
        for asset in collection["assets"]:
            assert asset.pop("collection") == {"id": collection["id"]}
    assert compiled == reference
    assert [len(c["assets"]) for c in compiled["data"]["collections"]] == [0, 25, 25]


async def test_first_out_of_range_is_refused_on_either_path(tenant: Tenant) -> None:
    await _collection(tenant, "one")
    for query in (
        "{ collections { assets(first: 501) { id } } }",
        "{ collections { assets(first: -1) { id collection { id } } } }",
    ):
        body = await tenant.gql(query)
        assert body["data"] is None, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert error["message"] == "first must be between 0 and 500"


def test_the_heaviest_allowed_shape_compiles() -> None:
    """Guard against a silent fallback to graphql-core (15x slower for this shape): plain
    fields under Collection.assets compile; a second level of resolvers does not."""
    from schema import documents, schema

    def plan(source: str) -> Any:
        return documents.prepare(source).plan(schema._schema, None)

    heavy = "{ collections { id name assets { id name tags uploadedAt mediaType size } } }"
    compiled = plan(heavy)
    assert compiled is not None and compiled.batched_count == 1
    assert plan("{ collections { assets { id collection { id } } } }") is None
    assert plan("{ collections { children { assets { id } } } }") is None


async def test_many_collections_with_a_small_first(tenant: Tenant) -> None:
    """`first: 1` over 600 collections: the batch must stay within the database's limits on
    one statement (SQLite allows 500 terms in a compound SELECT)."""
    from pixelwand.ids import new_id
    from pixelwand.models import Collection

    ids = [new_id() for _ in range(600)]
    await Collection.bulk_create(
        [Collection(id=i, organization_id=tenant.org_id, name=f"c{n}") for n, i in enumerate(ids)]
    )
    last = ids[-1]
    seeded = await seed_assets(tenant.org_id, [{"collection_id": last}, {"collection_id": last}])
    body = await tenant.gql("{ collections { id assets(first: 1) { id } } }")
    assert "errors" not in body, body
    got = {c["id"]: [a["id"] for a in c["assets"]] for c in body["data"]["collections"]}
    assert len(got) == 600
    assert len(got[last]) == 1 and got[last][0] in seeded
    assert all(v == [] for k, v in got.items() if k != last)


@pytest.mark.backends("sqlite-local")  # PostgreSQL reads from a pool of connections
async def test_sqlite_batches_read_on_a_connection_of_their_own(
    tenant: Tenant, backend: Any
) -> None:
    """On SQLite every statement of the process waits for the one connection; the batch of
    Collection.assets reads on its own (WAL lets both read at once), so other tenants'
    statements do not queue behind it. PostgreSQL reads from a pool."""
    import asyncio

    from tortoise import connections

    from pixelwand import db
    from pixelwand.services.assets import assets_by_collection_ids

    collection = await _collection(tenant, "own-connection")
    await seed_assets(tenant.org_id, [{"collection_id": collection} for _ in range(3)])
    default = connections.get("default")
    assert db.batch_connection() is not default
    async with default._lock:  # the default connection busy with another statement
        found = await asyncio.wait_for(
            assets_by_collection_ids(tenant.org_id, [collection], per_collection=500), 10
        )
    assert len(found[collection]) == 3
    body = await tenant.gql("{ collections { id assets { id } } }")
    [entry] = [c for c in body["data"]["collections"] if c["id"] == collection]
    assert len(entry["assets"]) == 3


async def test_compiled_batches_serialize_item_by_item_with_pauses(
    tenant: Tenant, app: Any, monkeypatch: Any
) -> None:
    """A collection's assets are serialized one at a time before the root, with pauses for
    other requests between (the whole collection was one step)."""
    from pixelwand.auth import Principal
    from pixelwand.plans import Plan
    from schema import documents, schema
    from schema.context import Context
    from schema.execution import executor

    collection = await _collection(tenant, "paused")
    await seed_assets(tenant.org_id, [{"collection_id": collection} for _ in range(40)])
    paused = 0

    async def give_way() -> None:
        nonlocal paused
        paused += 1

    monkeypatch.setattr(executor, "YIELD_SECONDS", -1.0)  # pause after every item
    monkeypatch.setattr(executor, "give_way", give_way)
    query = "query Paused { collections { id assets { id name } } }"
    prepared = documents.prepare(query)
    assert prepared.plan(schema._schema, None) is not None  # the compiled path
    principal = Principal(tenant.key_id, tenant.org_id, "org", Plan.ENTERPRISE, frozenset({"read"}))
    context = Context(runtime=app.state.runtime, principal=principal, max_cost=50_000)
    result = await executor.run_compiled(
        schema._schema, prepared.plan(schema._schema, None), {}, context
    )
    assert not result.errors
    [entry] = [c for c in result.data["collections"] if c["id"] == collection]
    assert len(entry["assets"]) == 40 and set(entry["assets"][0]) == {"id", "name"}
    assert paused >= 40


async def test_a_refused_answer_is_refused_before_every_asset_is_read(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The estimate counts `collections` as 20; an organization may hold 10,000. With 1,200
    collections of 50 assets, `{ collections { assets { … } } }` read and decoded all 60,000
    assets (~5 s and +80 MB on SQLite for 2,000 collections of 50; 10,000 collections could
    hold 5 M) before execution found the answer over the limit. The loader now stops once
    more than the limit (50,000) would be read, and the refusal is still charged as the
    answer it would have been (the key's next request is 429)."""
    from pixelwand.models import Collection
    from pixelwand.services import assets

    collections = [Collection(organization_id=tenant.org_id, name=f"c{i}") for i in range(1_020)]
    await Collection.bulk_create(collections, batch_size=1_020)
    rows = [{"collection_id": collections[i % 1_020].id} for i in range(51_000)]
    for start in range(0, len(rows), 5_000):
        await seed_assets(tenant.org_id, rows[start : start + 5_000])
    small = await tenant.gql("{ collections { id assets(first: 1) { id } } }")
    assert "errors" not in small and len(small["data"]["collections"]) == 1_020
    decoded = 0
    real_decode = assets.decode_asset

    def counting(row: Any) -> Any:
        nonlocal decoded
        decoded += 1
        return real_decode(row)

    monkeypatch.setattr(assets, "decode_asset", counting)
    reader = await tenant.add_key("read")  # a fresh allowance for the refused query
    body = await reader.gql("{ collections { id assets { id name tags } } }")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", body
    assert error["message"].startswith("the answer holds more than 50000 objects")
    assert decoded <= 50_000, decoded  # before: 51,000, every asset of every collection
    r = await reader.post("/graphql", json={"query": "{ viewer { plan } }"})
    assert r.status_code == 429, r.text
