"""GraphQL cost: objects an answer may hold (page sizes x nesting) and renders, refused with
QUERY_TOO_COMPLEX before execution; the real count is enforced during execution too."""

from __future__ import annotations

from typing import Any

from pixelwand.auth import Principal
from pixelwand.plans import Plan
from schema import documents, schema
from schema.context import Context
from schema.execution import execute_prepared
from schema.execution.cost import RENDER_COST
from tests.conftest import Tenant
from tests.helpers import seed_assets

DEFAULT_MAX_COST = 50_000

_CREATE_COLLECTION = """
mutation($input: CreateCollectionInput!) { createCollection(input: $input) { collection { id } } }
"""

# The issue's attacks: four levels of assets over 50 assets, and three levels under 10 aliases.
FOUR_LEVELS = (
    "{ assets { items { collection { assets { collection { assets { collection "
    "{ assets { id } } } } } } } } }"
)
_THREE_LEVELS = "assets { items { collection { assets { collection { assets { id } } } } } }"
TEN_ALIASES = "{ " + " ".join(f"a{i}: {_THREE_LEVELS}" for i in range(10)) + " }"


async def _collection(tenant: Tenant, name: str) -> str:
    body = await tenant.gql(_CREATE_COLLECTION, {"input": {"name": name}})
    assert "errors" not in body, body
    return body["data"]["createCollection"]["collection"]["id"]


async def _fifty_in_one_collection(tenant: Tenant) -> str:
    collection = await _collection(tenant, "crowded")
    await seed_assets(tenant.org_id, [{"collection_id": collection} for _ in range(50)])
    return collection


async def _refused(tenant: Tenant, query: str, variables: dict[str, Any] | None = None) -> str:
    r = await tenant.post("/graphql", json={"query": query, "variables": variables or {}})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", body
    return error["message"]


async def test_the_issues_four_level_query_is_refused_before_execution(tenant: Tenant) -> None:
    await _fifty_in_one_collection(tenant)
    message = await _refused(tenant, FOUR_LEVELS)
    assert "cost" in message and str(DEFAULT_MAX_COST) in message


async def test_the_issues_ten_alias_query_is_refused(tenant: Tenant) -> None:
    await _fifty_in_one_collection(tenant)
    await _refused(tenant, TEN_ALIASES)


async def test_cost_refusal_over_get_and_as_a_persisted_query(tenant: Tenant) -> None:
    r = await tenant.get("/graphql", params={"query": FOUR_LEVELS})
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == (
        "QUERY_TOO_COMPLEX"
    )
    import hashlib

    sha = hashlib.sha256(TEN_ALIASES.encode()).hexdigest()
    ext = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    r = await tenant.post("/graphql", json={"query": TEN_ALIASES, "extensions": ext})
    assert r.status_code == 400, r.text
    r = await tenant.post("/graphql", json={"extensions": ext})  # by hash alone: same answer
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_a_deep_but_small_query_works(tenant: Tenant) -> None:
    await _fifty_in_one_collection(tenant)
    query = """{ assets(pageSize: 5) { items { id collection { assets(first: 5) {
        id collection { assets(first: 5) {
          id collection { assets(first: 5) { id } } } } } } } } }"""
    body = await tenant.gql(query)
    assert "errors" not in body, body
    items = body["data"]["assets"]["items"]
    assert len(items) == 5
    inner = items[0]["collection"]["assets"][0]["collection"]["assets"]
    assert len(inner) == 5 and len(inner[0]["collection"]["assets"]) == 5


async def test_collection_assets_first_bounds_the_list(tenant: Tenant) -> None:
    collection = await _fifty_in_one_collection(tenant)
    body = await tenant.gql("{ collections { id assets(first: 3) { id } all: assets { id } } }")
    [found] = [c for c in body["data"]["collections"] if c["id"] == collection]
    assert len(found["assets"]) == 3 and len(found["all"]) == 50
    assert [a["id"] for a in found["all"][:3]] == [a["id"] for a in found["assets"]]
    body = await tenant.gql("{ collections { assets(first: 501) { id } } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "first must be between 0 and 500" in body["errors"][0]["message"]


async def test_variables_count_page_sizes(tenant: Tenant) -> None:
    await _fifty_in_one_collection(tenant)
    query = """query($n: Int!, $k: Int) {
        assets(pageSize: $n) { items { id collection { assets(first: $k) { id } } } } }"""
    # 200 assets x 500 per collection: over the limit; smaller pages are not.
    await _refused(tenant, query, {"n": 200})
    body = await tenant.gql(query, {"n": 200, "k": 10})
    assert "errors" not in body, body
    assert len(body["data"]["assets"]["items"]) == 50


async def test_renders_count(tenant: Tenant) -> None:
    many = DEFAULT_MAX_COST // RENDER_COST + 1
    fields = " ".join(
        f'e{i}: exportUrl(assetId: "c000000000000000000000000", format: "JPEG") {{ url }}'
        for i in range(many)
    )
    await _refused(tenant, "{ " + fields + " }")
    # One render is an ordinary request (the id does not exist: NOT_FOUND, not a cost error).
    body = await tenant.gql(
        '{ exportUrl(assetId: "c000000000000000000000000", format: "JPEG") { url } }'
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_rest_stored_operations_are_under_the_limit(tenant: Tenant) -> None:
    from compat_rest.operations import stored_operations

    worst = {"page": 1, "pageSize": 200, "topLevelOnly": False}
    for name, op in stored_operations().items():
        plan = op.prepared.cost(schema._schema, None)
        assert plan is not None, name
        assert plan.cost(worst) <= DEFAULT_MAX_COST // 10, (name, plan.cost(worst))
    r = await tenant.get("/api/v1/assets", params={"pageSize": 200})
    assert r.status_code == 200, r.text


async def test_the_real_count_is_enforced_during_execution(tenant: Tenant, app: Any) -> None:
    """Lists without a size argument are estimated (20 collections); the real answer is
    counted too: 30 collections of 4 assets hold 150 objects, over a limit of 100 that the
    estimate (20 x 5) passes."""
    ids = [await _collection(tenant, f"c{i:02d}") for i in range(30)]
    await seed_assets(tenant.org_id, [{"collection_id": c} for c in ids for _ in range(4)])
    principal = Principal(tenant.key_id, tenant.org_id, "org", Plan.ENTERPRISE, frozenset({"read"}))

    async def run(query: str, limit: int) -> Any:
        context = Context(runtime=app.state.runtime, principal=principal, max_cost=limit)
        return await execute_prepared(schema._schema, documents.prepare(query), {}, context)

    result = await run("{ collections { id assets(first: 4) { id } } }", 100)
    assert result.data is None and result.errors
    assert result.errors[0].original_error.code == "QUERY_TOO_COMPLEX"
    assert "more than 100 objects" in result.errors[0].message
    result = await run("{ collections { id assets(first: 4) { id } } }", 1000)
    assert not result.errors and len(result.data["collections"]) == 30
    # A root list on the compiled path is counted as well.
    result = await run("{ collections { id name } }", 25)
    assert result.errors and result.errors[0].original_error.code == "QUERY_TOO_COMPLEX"


async def test_a_keys_expensive_queries_take_turns(tenant: Tenant) -> None:
    """One runs, two wait, the rest answer 429 at once; another key is not held up."""
    import asyncio

    await _fifty_in_one_collection(tenant)
    # Estimated 1,020 objects (over HEAVY_COST): six requests' worth of the key's allowance
    # each (pixelwand/ratelimit/allowance.py), so that ten of them fit in ENTERPRISE's burst
    # of 100 and what is refused here is refused by the turns, not by the allowance.
    heavy = "{ collections { id assets(first: 50) { id name } } }"
    answers = await asyncio.gather(
        *(tenant.post("/graphql", json={"query": heavy}) for _ in range(10))
    )
    # How many overlap depends on timing (a Redis round trip staggers them): every answer
    # is either the data or 429, at least three (one running, two waiting) get the data.
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 429} and statuses.count(200) >= 3, statuses
    for refused in (r for r in answers if r.status_code == 429):
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    # Cheap queries and renders are not counted as expensive: they never wait their turn.
    cheap = await asyncio.gather(
        *(tenant.post("/graphql", json={"query": "{ viewer { plan } }"}) for _ in range(5))
    )
    assert all(r.status_code == 200 for r in cheap)
