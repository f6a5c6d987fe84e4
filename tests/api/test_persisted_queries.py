"""Automatic persisted queries (Apollo's protocol) on /graphql."""

from __future__ import annotations

import hashlib
import json

from compat_rest.operations import stored_operations
from tests.helpers import seed_assets

QUERY = "query Page($n: Int!) { assets(pageSize: $n) { total items { id name tags } } }"


def _sha(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def _ext(sha: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


async def test_unknown_hash_then_register_then_hash_only(tenant):
    await seed_assets(tenant.org_id, [{"tags": ["x"]} for _ in range(3)])
    query = QUERY + f" # {tenant.org_id}"  # a document no other test registered
    sha = _sha(query)
    r = await tenant.post("/graphql", json={"extensions": _ext(sha), "variables": {"n": 2}})
    assert r.status_code == 200
    assert r.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    r = await tenant.post(
        "/graphql", json={"query": query, "extensions": _ext(sha), "variables": {"n": 2}}
    )
    registered = r.json()
    assert registered["data"]["assets"]["total"] == 3
    assert len(registered["data"]["assets"]["items"]) == 2

    r = await tenant.post("/graphql", json={"extensions": _ext(sha), "variables": {"n": 2}})
    assert r.json() == registered
    # GET works too (queries only), with extensions as JSON in the query string.
    r = await tenant.get(
        "/graphql",
        params={"extensions": json.dumps(_ext(sha)), "variables": json.dumps({"n": 2})},
    )
    assert r.json() == registered


async def test_hash_mismatch_is_400(tenant):
    r = await tenant.post("/graphql", json={"query": QUERY, "extensions": _ext("0" * 64)})
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_bad_persisted_query_extension_is_400(tenant):
    r = await tenant.post(
        "/graphql", json={"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "ab"}}}
    )
    assert r.status_code == 400


async def test_rest_operations_are_pre_registered(tenant):
    await seed_assets(tenant.org_id, [{} for _ in range(2)])
    op = stored_operations()["list_assets"]
    sha = _sha(op.prepared.source)
    r = await tenant.post(
        "/graphql", json={"extensions": _ext(sha), "variables": {"page": 1, "pageSize": 50}}
    )
    assert r.json()["data"]["assets"]["total"] == 2


async def test_invalid_documents_are_not_registered(tenant):
    bad = "{ assets { nope } }"
    sha = _sha(bad)
    r = await tenant.post("/graphql", json={"query": bad, "extensions": _ext(sha)})
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    r = await tenant.post("/graphql", json={"extensions": _ext(sha)})
    assert r.json()["errors"][0]["message"] == "PersistedQueryNotFound"


async def test_persisted_queries_keep_limits_and_scopes(make_tenant):
    t = await make_tenant(scopes="write")  # no read scope
    query = "{ viewer { plan } }"
    r = await t.post("/graphql", json={"query": query, "extensions": _ext(_sha(query))})
    assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    deep = "{ collections " + "{ children " * 12 + "{ id }" + " }" * 13
    r = await t.post("/graphql", json={"query": deep, "extensions": _ext(_sha(deep))})
    assert "exceeds maximum operation depth" in r.json()["errors"][0]["message"]
