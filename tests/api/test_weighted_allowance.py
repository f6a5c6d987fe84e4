"""Cost-weighted allowance (pixelwand/ratelimit/allowance.py): a GraphQL query spends its
key's allowance in proportion to the objects it returns, one request per started 200 objects
in lists (the largest documented REST request, a page of 200 assets), so that a plan's rate
bounds the work a key causes. Every REST route and every ordinary query still costs one.

On both backends: sqlite-local limits in process, postgres-s3 through Redis (the Lua script).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from typing import Any

import pytest

from pixelwand.models import Collection
from pixelwand.ratelimit.allowance import OBJECTS_PER_REQUEST, request_units
from schema import schema
from tests.conftest import Tenant
from tests.helpers import make_image, seed_assets, upload

TEAM_RPS = 3.0
INTERVAL = 1 / TEAM_RPS
BURST = 3
# Ten pages of 200 assets: 2,000 objects in lists: ten requests' worth.
TEN_PAGES = (
    "{ " + " ".join(f"a{i}: assets(pageSize: 200) {{ items {{ id }} }}" for i in range(10)) + " }"
)
ONE_PAGE = "{ assets(pageSize: 200) { items { id name size tags collection { id } } } }"


async def _team_with_200_assets(make_tenant: Any) -> Tenant:
    tenant = await make_tenant(plan="TEAM")
    await seed_assets(tenant.org_id, [{} for _ in range(200)])
    return tenant


def _headers(r: Any) -> tuple[int, int, int]:
    return (
        int(r.headers["ratelimit-limit"]),
        int(r.headers["ratelimit-remaining"]),
        int(r.headers["ratelimit-reset"]),
    )


def test_the_unit_is_the_largest_documented_rest_request() -> None:
    from compat_rest.operations import stored_operations

    worst = {"page": 1, "pageSize": 200, "topLevelOnly": False}
    costs = {}
    for name, op in stored_operations().items():
        plan = op.prepared.cost(schema._schema, None)
        assert plan is not None, name
        costs[name] = plan.listed(worst)
    assert max(costs.values()) == OBJECTS_PER_REQUEST, costs
    assert request_units(OBJECTS_PER_REQUEST) == 1
    assert request_units(OBJECTS_PER_REQUEST + 1) == 2
    assert request_units(0) == 1
    assert request_units(5, renders=3) == 3


async def test_a_heavy_query_refuses_the_keys_next_requests_for_its_weight(
    make_tenant: Any,
) -> None:
    tenant = await _team_with_200_assets(make_tenant)
    started = time.monotonic()
    r = await tenant.post("/graphql", json={"query": TEN_PAGES})
    assert r.status_code == 200, r.text
    assert [len(page["items"]) for page in r.json()["data"].values()] == [200] * 10
    # Ten requests' worth: the allowance is gone and refills in ten intervals.
    limit, remaining, reset = _headers(r)
    elapsed = time.monotonic() - started
    assert (limit, remaining) == (BURST, 0)
    assert math.ceil(10 * INTERVAL - elapsed) <= reset <= math.ceil(10 * INTERVAL)

    r = await tenant.get("/api/v1/export-presets")
    elapsed = time.monotonic() - started
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "rate limit exceeded: 3 requests/second on the TEAM plan"
    # The next request fits when ten requests less the burst, plus itself, have passed.
    retry_after = int(r.headers["retry-after"])
    assert math.ceil(8 * INTERVAL - elapsed) <= retry_after <= math.ceil(8 * INTERVAL)
    r = await tenant.post("/graphql", json={"query": "{ viewer { plan } }"})
    assert r.status_code == 429
    assert r.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"

    await asyncio.sleep(retry_after)
    r = await tenant.get("/api/v1/export-presets")
    assert r.status_code == 200, r.text


async def test_another_key_is_unaffected(make_tenant: Any) -> None:
    tenant = await _team_with_200_assets(make_tenant)
    second_key = await tenant.add_key("read")
    other_org = await make_tenant(plan="TEAM")
    assert (await tenant.post("/graphql", json={"query": TEN_PAGES})).status_code == 200
    assert (await tenant.get("/api/v1/export-presets")).status_code == 429
    for other in (second_key, other_org):
        answers = [await other.get("/api/v1/export-presets") for _ in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert _headers(answers[0])[1] == 2  # a whole allowance, less this request


async def test_rest_routes_and_ordinary_queries_cost_one_request(make_tenant: Any) -> None:
    tenant = await _team_with_200_assets(make_tenant)
    # The largest documented REST request: a page of 200 assets. A fresh key's first answer
    # says what it cost (2 left of 3: one request; two would leave 1), and three fit in the
    # burst (two each would refuse the third within a second).
    answers = [await tenant.get("/api/v1/assets", params={"pageSize": 200}) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert len(answers[0].json()["items"]) == 200
    assert _headers(answers[0])[1] == 2

    # The same page through GraphQL, and an ordinary query: one request each.
    for query in (ONE_PAGE, "{ viewer { plan storageUsed } }"):
        key = await tenant.add_key("read")
        answers = [await key.post("/graphql", json={"query": query}) for _ in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 200], query
        assert _headers(answers[0])[1] == 2, query


async def test_renders_count_one_request_each(make_tenant: Any) -> None:
    """Each render a query causes spends one request (what REST's export-url charges);
    renditions already made, and renders refused, spend nothing more: a page of cached
    thumbnails is one request, as the console asks for them."""
    from pixelwand.plans import Plan
    from pixelwand.services.organizations import set_plan

    tenant = await make_tenant(plan="ENTERPRISE")  # uploads first, at ENTERPRISE's rate
    ids = [(await upload(tenant, make_image(40 + i, 30), f"r{i}.jpg"))["id"] for i in range(3)]
    await set_plan(tenant.org_id, Plan.TEAM)
    three = "{ " + " ".join(
        f'e{i}: exportUrl(assetId: "{asset_id}", format: "WEBP", maxWidth: 16) {{ url }}'
        for i, asset_id in enumerate(ids)
    ) + " }"  # fmt: skip
    key = await tenant.add_key("read")
    r = await key.post("/graphql", json={"query": three})
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    assert _headers(r)[1] == 0  # three renders: the whole burst
    assert (await key.get("/api/v1/export-presets")).status_code == 429

    cached = await tenant.add_key("read")
    r = await cached.post("/graphql", json={"query": three})
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    assert _headers(r)[1] == BURST - 1  # the same three renditions, made already: one request
    missing = 'exportUrl(assetId: "c000000000000000000000000", format: "JPEG") { url }'
    nine = "{ " + " ".join(f"e{i}: {missing}" for i in range(9)) + " }"
    r = await cached.post("/graphql", json={"query": nine})
    assert r.status_code == 200 and _headers(r)[1] == BURST - 2  # nine refused: one request


async def test_settled_by_the_objects_really_produced(make_tenant: Any) -> None:
    # Estimated small (20 collections, typically), produced large: charged what it produced.
    tenant = await make_tenant(plan="TEAM")
    await Collection.bulk_create(
        [Collection(organization_id=tenant.org_id, name=f"c{i}") for i in range(5 * 200 + 1)]
    )
    r = await tenant.post("/graphql", json={"query": "{ collections { id } }"})
    assert r.status_code == 200 and len(r.json()["data"]["collections"]) == 1001
    # Six requests' worth (the estimate said one): the burst and more, refused for a second.
    assert _headers(r)[1] == 0
    assert (await tenant.get("/api/v1/export-presets")).status_code == 429

    # Estimated large (20 x 500 assets), produced small: what the estimate took is given back.
    small = await make_tenant(plan="TEAM")
    r = await small.post("/graphql", json={"query": "{ collections { id assets { id } } }"})
    assert r.status_code == 200 and _headers(r)[1] == 2  # 51 requests' worth without it
    assert (await small.get("/api/v1/export-presets")).status_code == 200


async def test_debt_is_capped(make_tenant: Any, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = app.state.runtime
    monkeypatch.setattr(
        runtime, "settings", dataclasses.replace(runtime.settings, rate_limit_max_debt_seconds=1.0)
    )
    tenant = await _team_with_200_assets(make_tenant)
    r = await tenant.post("/graphql", json={"query": TEN_PAGES})
    assert r.status_code == 200
    # Uncapped: 10 intervals (3.3 s) to a full allowance; capped: the burst and one second.
    assert _headers(r)[2] <= math.ceil(BURST * INTERVAL + 1.0)
    r = await tenant.get("/api/v1/export-presets")
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) <= math.ceil(1.0 + INTERVAL)


async def test_two_heavy_queries_at_once_one_is_refused(
    make_tenant: Any,
) -> None:
    # Both may pass the gate (a burst of 3); the one that asks for its weight second finds
    # the key in debt: 429, whether the gate or the up-front charge refuses it.
    tenant = await _team_with_200_assets(make_tenant)
    answers = await asyncio.gather(
        *(tenant.post("/graphql", json={"query": TEN_PAGES}) for _ in range(2))
    )
    ok, refused = sorted(answers, key=lambda r: r.status_code)
    assert (ok.status_code, refused.status_code) == (200, 429)
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert refused.json()["errors"][0]["message"].startswith(
        "rate limit exceeded: 3 requests/second on the TEAM plan"
    )
    assert int(refused.headers["retry-after"]) >= 2
    assert _headers(refused)[1] == 0
    # That the refused one spends nothing is exact in tests/ratelimit/test_limiters.py.
