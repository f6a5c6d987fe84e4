"""Request bodies bounded while they stream (413), the full order of checks on REST, and
what the gate spends; keys stored only as SHA-256; the document caches bounded by bytes."""

from __future__ import annotations

import asyncio
import gc
import gzip
import hashlib
import json
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import BUSINESS_QUOTA
from tests.helpers import seed_assets

MIB = 1024 * 1024
JSON_LIMIT = MIB  # PIXELWAND_MAX_JSON_BODY_BYTES's default
DOCUMENT_LIMIT = 256 * 1024  # PIXELWAND_MAX_GRAPHQL_DOCUMENT_BYTES's default
TOO_LARGE = {"error": f"request body is larger than {JSON_LIMIT} bytes"}
UNKNOWN_ID = "c" + "0" * 24


def _padded_json(size: int) -> bytes:
    """A valid JSON object of exactly `size` bytes (whitespace padding)."""
    return b'{"name": "big"' + b" " * (size - 15) + b"}"


async def _chunks(total: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    yield b'{"name": "x"'
    while sent < total:
        yield b" " * chunk
        sent += chunk
    yield b"}"


# --- 413 --------------------------------------------------------------------------------


async def test_json_body_past_the_limit_is_413_from_content_length(tenant: Any) -> None:
    r = await tenant.post(
        "/api/v1/collections",
        content=_padded_json(JSON_LIMIT + 1),
        headers={"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()) == (413, TOO_LARGE)
    assert r.headers["connection"] == "close"
    # At the limit exactly: read and answered.
    r = await tenant.post(
        "/api/v1/collections",
        content=_padded_json(JSON_LIMIT),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text


async def test_chunked_body_past_the_limit_is_413(tenant: Any) -> None:
    r = await tenant.post(
        "/api/v1/collections",
        content=_chunks(2 * JSON_LIMIT),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in r.request.headers  # really sent chunked
    assert (r.status_code, r.json()) == (413, TOO_LARGE)
    r = await tenant.post(
        "/api/v1/collections",
        content=_chunks(JSON_LIMIT // 2),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code in (200, 201), r.text


@pytest.mark.parametrize("chunked", [False, True])
async def test_graphql_body_past_the_limit_is_413(tenant: Any, chunked: bool) -> None:
    body: Any = _chunks(2 * JSON_LIMIT) if chunked else _padded_json(JSON_LIMIT + 1)
    r = await tenant.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json() == {
        "errors": [{"message": TOO_LARGE["error"], "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]
    }


@pytest.mark.parametrize("path", ["/api/v1/collections", "/graphql"])
async def test_a_compressed_body_is_refused_not_misread(tenant: Any, path: str) -> None:
    """`Content-Encoding: gzip` bodies are not read as JSON (a gzip stream's bytes would be
    'not valid JSON' at best): 400 naming the encoding; nothing is created."""
    made = 'mutation { createCollection(input: {name: "zipped"}) { created } }'
    body = {"query": made} if path == "/graphql" else {"name": "zipped"}
    raw = gzip.compress(json.dumps(body).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    r = await tenant.post(path, content=raw, headers=headers)
    assert r.status_code == 400, r.text
    assert "Content-Encoding 'gzip' is not supported: send the body uncompressed" in r.text
    listed = await tenant.get("/api/v1/collections", params={"name": "zipped"})
    assert listed.json()["collections"] == []
    identity = {"Content-Encoding": "identity"}
    plain = await tenant.post(path, json=body, headers=identity)
    assert plain.status_code in (200, 201) and "errors" not in plain.json(), plain.text
    listed = await tenant.get("/api/v1/collections", params={"name": "zipped"})
    assert [c["name"] for c in listed.json()["collections"]] == ["zipped"]


async def test_graphql_document_past_its_limit_is_413_apq_included(tenant: Any) -> None:
    document = "{ __typename }\n#" + "x" * DOCUMENT_LIMIT
    expected = {
        "errors": [
            {
                "message": f"GraphQL document is larger than {DOCUMENT_LIMIT} bytes",
                "extensions": {"code": "PAYLOAD_TOO_LARGE"},
            }
        ]
    }
    r = await tenant.post("/graphql", json={"query": document})
    assert (r.status_code, r.json()) == (413, expected)
    sha = hashlib.sha256(document.encode()).hexdigest()
    apq = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    r = await tenant.post("/graphql", json={"query": document, "extensions": apq})
    assert (r.status_code, r.json()) == (413, expected)
    r = await tenant.post("/graphql", json={"extensions": apq})  # so it was not registered
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # Multi-byte characters count as bytes: 100,000 four-byte characters are 400,000 bytes.
    r = await tenant.post("/graphql", json={"query": "{ __typename }\n#" + "😀" * 100_000})
    assert r.status_code == 413
    # Just under the limit: parsed and answered.
    small = "{ __typename }\n#" + "x" * (DOCUMENT_LIMIT - 100)
    r = await tenant.post("/graphql", json={"query": small})
    assert r.json() == {"data": {"__typename": "Query"}}


# --- the order of checks ----------------------------------------------------------------


async def _exhausted(make_tenant: Any, scopes: str = "read,write,admin") -> Any:
    """A TEAM key (3 requests/second, a burst of 3) with its allowance spent."""
    t = await make_tenant(plan="TEAM", scopes=scopes)
    for _ in range(10):
        r = await t.get("/api/v1/export-presets")
        if r.status_code == 429:
            return t
    raise AssertionError("the TEAM key was never limited")


async def test_order_of_checks_on_rest(make_tenant: Any, http: Any) -> None:
    """401 → 402 → 429 → 413 → 403 → 400 → 404/403 → 402 (quota), one row per boundary:
    each request fails two checks, and the earlier one answers."""
    full = await make_tenant()
    other = await make_tenant()
    read_only = await full.add_key("read")
    free = await make_tenant(plan="FREE")
    limited = await _exhausted(make_tenant)
    business = await make_tenant(plan="BUSINESS")
    (foreign_asset,) = await seed_assets(other.org_id, [{}])
    big = _padded_json(JSON_LIMIT + 1)
    json_type = {"Content-Type": "application/json"}

    def bearer(t: Any) -> dict[str, str]:
        return {**t.auth, **json_type}

    rows: list[tuple[str, str, str, dict[str, str], Any, int, str]] = [
        # (what, method, url, headers, body, status, error)
        (
            "401 before 402/413",
            "POST",
            "/api/v1/collections",
            json_type,
            big,
            401,
            "missing API key: send Authorization: Bearer ak_live_...",
        ),
        (
            "402 (plan) before 429/413",
            "POST",
            "/api/v1/collections",
            bearer(free),
            big,
            402,
            "upgrade required: the Free plan has no API access",
        ),
        (
            "429 before 413",
            "POST",
            "/api/v1/collections",
            bearer(limited),
            big,
            429,
            "rate limit exceeded: 3 requests/second on the TEAM plan",
        ),
        (
            "413 before 403 (scope)",
            "POST",
            "/api/v1/collections",
            bearer(read_only),
            big,
            413,
            TOO_LARGE["error"],
        ),
        (
            "403 (scope) before 400",
            "POST",
            "/api/v1/collections",
            bearer(read_only),
            b"{not json",
            403,
            "this API key lacks the write scope",
        ),
        (
            "400 before 404 (a bad PATCH of an unknown asset)",
            "PATCH",
            f"/api/v1/assets/{UNKNOWN_ID}",
            bearer(full),
            b'{"name": ""}',
            400,
            "name must not be empty",
        ),
        (
            "400 (unknown field) before 404",
            "PATCH",
            f"/api/v1/assets/{UNKNOWN_ID}",
            bearer(full),
            b'{"size": 1}',
            400,
            "unknown field 'size'",
        ),
        (
            "400 (tags) before 403 (another organization's asset)",
            "PATCH",
            f"/api/v1/assets/{foreign_asset}",
            bearer(full),
            b'{"tags": ["a\\u0000"]}',
            400,
            "tags[0] must not contain NUL characters",
        ),
        (
            "404 for an unknown asset",
            "PATCH",
            f"/api/v1/assets/{UNKNOWN_ID}",
            bearer(full),
            b'{"name": "fine"}',
            404,
            f"asset {UNKNOWN_ID} not found",
        ),
        (
            "403 for another organization's asset",
            "PATCH",
            f"/api/v1/assets/{foreign_asset}",
            bearer(full),
            b'{"name": "fine"}',
            403,
            f"asset {foreign_asset} belongs to another organization",
        ),
        (
            "400 before 402 (quota)",
            "POST",
            "/api/v1/assets",
            bearer(business),
            b'{"mode": "presign", "originalName": "a.jpg", "mimeType": "image/bmp", "size": %d}'
            % (BUSINESS_QUOTA * 2),
            400,
            "mimeType image/bmp is not supported; accepted: ",
        ),
        (
            "402 (quota) last",
            "POST",
            "/api/v1/assets",
            bearer(business),
            b'{"mode": "presign", "originalName": "a.jpg", "mimeType": "image/jpeg", "size": %d}'
            % (BUSINESS_QUOTA * 2),
            402,
            "storage quota exceeded: upgrade your plan or delete assets",
        ),
    ]
    for what, method, url, headers, body, status, error in rows:
        r = await http.request(method, url, headers=headers, content=body)
        assert r.status_code == status, (what, r.text)
        assert r.json()["error"].startswith(error), (what, r.json())


async def test_refused_requests_spend_no_allowance(make_tenant: Any, http: Any) -> None:
    # 429s: a limited key that keeps asking is not pushed further back.
    limited = await _exhausted(make_tenant)
    waits = []
    for _ in range(20):
        r = await limited.get("/api/v1/export-presets")
        assert r.status_code == 429
        waits.append(int(r.headers["retry-after"]))
    assert max(waits) == 1, waits
    await asyncio.sleep(1.05)
    r = await limited.get("/api/v1/export-presets")
    assert r.status_code == 200, r.text  # 20 counted 429s would be 7 seconds of debt

    # 402s: a FREE organization's refused calls leave the whole burst for after an upgrade.
    from pixelwand.plans import Plan
    from pixelwand.services import organizations

    free = await make_tenant(plan="FREE")
    for _ in range(10):
        assert (await free.get("/api/v1/export-presets")).status_code == 402
    await organizations.set_plan(free.org_id, Plan.TEAM)
    await asyncio.sleep(1.05)  # principals are cached for at most a second
    remaining = []
    for _ in range(3):
        r = await free.get("/api/v1/export-presets")
        assert r.status_code == 200, r.text
        remaining.append(int(r.headers["ratelimit-remaining"]))
    assert remaining == [2, 1, 0]

    # 401s: answers to unknown keys spend nobody's allowance.
    team = await make_tenant(plan="TEAM")
    wrong = team.key[:-1] + ("y" if team.key.endswith("x") else "x")  # 1 key in 62 ends in x
    for _ in range(10):
        r = await http.get("/api/v1/export-presets", headers={"Authorization": f"Bearer {wrong}"})
        assert r.status_code == 401
    r = await team.get("/api/v1/export-presets")
    assert (r.status_code, r.headers["ratelimit-remaining"]) == (200, "2")


# --- keys -------------------------------------------------------------------------------


async def test_keys_are_stored_only_as_sha256(tenant: Any) -> None:
    from tortoise import connections

    body = await tenant.gql(
        'mutation { createApiKey(scopes: ["read"], name: "audit") { key apiKey { id prefix } } }'
    )
    created = body["data"]["createApiKey"]
    plain, prefix = created["key"], created["apiKey"]["prefix"]
    assert plain.startswith(prefix) and len(prefix) <= 12
    secret_part = plain[len(prefix) :]
    db = connections.get("default")
    if db.capabilities.dialect == "sqlite":
        _, tables = await db.execute_query("SELECT name FROM sqlite_master WHERE type='table'")
    else:
        _, tables = await db.execute_query(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
    names = [t[0] for t in tables]
    assert "api_keys" in names
    for table in names:
        _, rows = await db.execute_query(f'SELECT * FROM "{table}"')
        for row in rows:
            for value in row.values() if hasattr(row, "values") else row:
                text = value if isinstance(value, str) else str(value)
                assert secret_part not in text, (table, row)
    _, rows = await db.execute_query(
        "SELECT key_hash FROM api_keys WHERE id = $1"
        if db.capabilities.dialect == "postgres"
        else "SELECT key_hash FROM api_keys WHERE id = ?",
        [created["apiKey"]["id"]],
    )
    assert rows[0][0] == hashlib.sha256(plain.encode()).hexdigest()
    # And the key works, so what is stored is enough.
    r = await tenant.http.get("/api/v1/assets", headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 200


# --- the document caches, by bytes ------------------------------------------------------


def test_document_caches_are_bounded_by_bytes() -> None:
    """40 distinct 60 KB documents, as ad-hoc queries and as APQ registrations: the
    memory they hold stays within the byte budget (tracemalloc), and the oldest
    registration is evicted long before the count limit (1024)."""
    from schema import schema
    from schema.execution.documents import DocumentCache, PersistedQueryNotFound

    budget = MIB
    cache = DocumentCache(
        schema._schema, max_tokens=2000, max_bytes=budget, max_document_bytes=256 * 1024
    )
    docs = [f"{{ __typename }}\n# {i} " + "x" * 60_000 for i in range(40)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for doc in docs:
            assert cache.prepare(doc).document is not None
            cache.persisted(hashlib.sha256(doc.encode()).hexdigest(), doc)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.cached_bytes <= 2 * budget
    # Each document is held once (both LRUs share it) and the estimate counts twice
    # the text per LRU: what is really held stays under the budget.
    assert held <= 2 * budget, f"{held / MIB:.1f} MiB held for a {budget / MIB:.0f} MiB budget"
    first = hashlib.sha256(docs[0].encode()).hexdigest()
    with pytest.raises(PersistedQueryNotFound):
        cache.persisted(first, None)
    last = hashlib.sha256(docs[-1].encode()).hexdigest()
    assert cache.persisted(last, None).source == docs[-1]
