"""GET/PATCH/DELETE /api/v1/assets: listing, filters, pagination, isolation."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from urllib.parse import quote

import pytest

from tests.helpers import make_image, seed_assets, upload, without_facts

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def _all_ids(tenant, query: str = "", page_size: int = 200) -> list[str]:
    ids: list[str] = []
    page = 1
    while True:
        r = await tenant.get(f"/api/v1/assets?page={page}&pageSize={page_size}{query}")
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [a["id"] for a in body["items"]]
        if page >= body["totalPages"]:
            return ids
        page += 1


async def test_pagination_over_a_few_hundred_assets(tenant):
    ids = await seed_assets(tenant.org_id, [{} for _ in range(317)])
    newest_first = list(reversed(ids))
    r = await tenant.get("/api/v1/assets")
    body = r.json()
    assert (body["page"], body["pageSize"], body["total"], body["totalPages"]) == (1, 50, 317, 7)
    assert [a["id"] for a in body["items"]] == newest_first[:50]
    r = await tenant.get("/api/v1/assets?page=7&pageSize=50")
    assert [a["id"] for a in r.json()["items"]] == newest_first[300:]
    r = await tenant.get("/api/v1/assets?page=8&pageSize=50")
    body = r.json()
    assert body["items"] == [] and body["total"] == 317 and body["page"] == 8
    assert await _all_ids(tenant, page_size=33) == newest_first
    r = await tenant.get("/api/v1/assets?pageSize=200")
    assert len(r.json()["items"]) == 200 and r.json()["totalPages"] == 2


async def test_equal_upload_times_order_by_id(tenant):
    ids = await seed_assets(tenant.org_id, [{"uploaded_at": BASE} for _ in range(5)])
    assert await _all_ids(tenant, page_size=2) == sorted(ids, reverse=True)


async def test_empty_workspace(tenant):
    r = await tenant.get("/api/v1/assets")
    assert r.json() == {"items": [], "page": 1, "pageSize": 50, "total": 0, "totalPages": 0}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("pageSize=0", "pageSize"),
        ("pageSize=201", "pageSize"),
        ("pageSize=abc", "pageSize"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=1.5", "page"),
        ("type=AUDIO", "type"),
    ],
)
async def test_bad_list_parameters_are_400(tenant, query, message):
    r = await tenant.get(f"/api/v1/assets?{query}")
    assert r.status_code == 400
    assert message in r.json()["error"]


async def test_unknown_query_parameters_are_ignored(tenant):
    r = await tenant.get("/api/v1/assets?_=12345&utm_source=x")
    assert r.status_code == 200


async def test_filters(tenant):
    col = (await tenant.post("/api/v1/collections", json={"name": "Q2"})).json()
    rows = [
        {"name": "Hero-Banner.jpg", "tags": ["hero", "2024"]},
        {"name": "x.jpg", "original_name": "HERO_original.png", "tags": ["hero"]},
        {"name": "clip.mp4", "media_type": "VIDEO", "mime_type": "video/mp4", "tags": ["2024"]},
        {"name": "100%_done.jpg", "collection_id": col["id"], "tags": ["Hero"]},
        {"name": "plain.jpg", "collection_id": col["id"]},
    ]
    ids = await seed_assets(tenant.org_id, rows)

    async def names(query: str) -> set[str]:
        return {ids.index(i) for i in await _all_ids(tenant, query)}

    assert await names("&q=hero") == {0, 1}
    assert await names("&q=HERO_") == {1}
    assert await names("&q=%25") == {3}  # % is literal
    assert await names("&q=_") == {1, 3}  # _ is literal
    assert await names("&type=VIDEO") == {2}
    assert await names("&type=IMAGE") == {0, 1, 3, 4}
    assert await names("&tags=hero") == {0, 1}
    assert await names("&tags=Hero") == {3}  # exact match, case preserved
    assert await names("&tags=hero,2024") == {0}
    assert await names("&tags=hero,%202024%20,") == {0}
    assert await names("&tags=nope") == set()
    assert await names(f"&collectionId={col['id']}") == {3, 4}
    assert await names(f"&collectionId={col['id']}&q=plain") == {4}
    assert await names("&type=IMAGE&tags=hero&q=banner") == {0}
    # Filtered pages one row at a time walk the same order as one big page.
    for query in ("&q=hero", "&tags=2024", "&q=.&tags=hero"):
        assert await _all_ids(tenant, query, page_size=1) == await _all_ids(tenant, query)


async def test_filters_with_characters_that_need_escaping(tenant):
    """Tags travel as JSON on PostgreSQL and `q` as a LIKE pattern: neither may leak syntax."""
    rows = [
        {"name": 'say "hi".jpg', "tags": ['a"b', "back\\slash", "ünï", "[1]"]},
        {"name": "back\\slash.jpg", "tags": ["a", "b"]},
        {"name": "other.jpg", "tags": ["ab", "1"]},
    ]
    ids = await seed_assets(tenant.org_id, rows)

    async def names(query: str) -> set[int]:
        return {ids.index(i) for i in await _all_ids(tenant, query)}

    assert await names("&tags=" + quote('a"b')) == {0}
    assert await names("&tags=" + quote("back\\slash,ünï")) == {0}
    assert await names("&tags=" + quote("[1]")) == {0}
    assert await names("&tags=1") == {2}
    assert await names("&tags=" + quote('"a"')) == set()
    assert await names("&tags=a,b") == {1}
    assert await names("&q=" + quote('"HI"')) == {0}
    assert await names("&q=" + quote("k\\s")) == {1}
    assert await names("&q=" + quote("\\")) == {1}


async def test_collection_filter_checks_ownership(make_tenant):
    a = await make_tenant()
    b = await make_tenant()
    col_b = (await b.post("/api/v1/collections", json={"name": "B"})).json()
    assert (await a.get(f"/api/v1/assets?collectionId={col_b['id']}")).status_code == 403
    assert (await a.get("/api/v1/assets?collectionId=c" + "9" * 24)).status_code == 404
    assert (await a.get("/api/v1/assets?collectionId=bogus")).status_code == 404


async def test_cross_org_isolation(make_tenant):
    a = await make_tenant()
    b = await make_tenant()
    asset = await upload(a, make_image())
    await seed_assets(b.org_id, [{} for _ in range(3)])
    listing = (await b.get("/api/v1/assets")).json()
    assert listing["total"] == 3
    assert asset["id"] not in {x["id"] for x in listing["items"]}
    url = f"/api/v1/assets/{asset['id']}"
    assert (await b.get(url)).status_code == 403
    assert (await b.patch(url, json={"name": "pwned"})).status_code == 403
    assert (await b.delete(url)).status_code == 403
    assert (await a.get(url)).json()["name"] == "hero.jpg"


@pytest.mark.parametrize("asset_id", ["c" + "0" * 24, "nope", "C" + "0" * 24, "c" + "0" * 30])
async def test_unknown_or_malformed_id_is_404(tenant, asset_id):
    for method in ("GET", "PATCH", "DELETE"):
        r = await tenant.http.request(
            method, f"/api/v1/assets/{asset_id}", headers=tenant.auth, json={"name": "x"}
        )
        assert r.status_code == 404, method
        assert "not found" in r.json()["error"]


async def test_patch_name_tags_and_collection(tenant):
    asset = await upload(tenant, make_image(), tags=["a"])
    col = (await tenant.post("/api/v1/collections", json={"name": "C"})).json()
    url = f"/api/v1/assets/{asset['id']}"
    r = await tenant.patch(url, json={"tags": ["marketing", "q2", " q2 "]})
    assert r.status_code == 200
    assert without_facts(r.json()) == without_facts({**asset, "tags": ["marketing", "q2"]})
    r = await tenant.patch(url, json={"name": "Renamed.jpg", "collectionId": col["id"]})
    assert r.json()["name"] == "Renamed.jpg" and r.json()["collectionId"] == col["id"]
    assert r.json()["originalName"] == "hero.jpg"
    assert (await tenant.get("/api/v1/assets?tags=q2")).json()["total"] == 1
    assert (await tenant.get("/api/v1/assets?tags=a")).json()["total"] == 0
    r = await tenant.patch(url, json={"collectionId": None})
    assert r.status_code == 200 and r.json()["collectionId"] is None
    r = await tenant.patch(url, json={})
    assert r.status_code == 200 and r.json()["name"] == "Renamed.jpg"
    assert without_facts((await tenant.get(url)).json()) == without_facts(r.json())


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"size": 5}, 400, "'size'"),
        ({"storageKey": "x"}, 400, "'storageKey'"),
        ({"locationX": 5}, 400, "'locationX'"),
        ({"name": ""}, 400, "name"),
        ({"name": None}, 400, "name"),
        ({"name": 5}, 400, "name"),
        ({"tags": "a,b"}, 400, "tags"),
        ({"tags": None}, 400, "tags"),
        ({"tags": [f"t{i}" for i in range(51)]}, 400, "50"),
        ({"collectionId": "c" + "1" * 24}, 404, "not found"),
    ],
)
async def test_patch_rejects_bad_input(tenant, body, status, message):
    asset = await upload(tenant, make_image())
    r = await tenant.patch(f"/api/v1/assets/{asset['id']}", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert without_facts(
        (await tenant.get(f"/api/v1/assets/{asset['id']}")).json()
    ) == without_facts(asset)


async def test_patch_into_another_orgs_collection_is_403(make_tenant):
    a = await make_tenant()
    b = await make_tenant()
    col_b = (await b.post("/api/v1/collections", json={"name": "B"})).json()
    asset = await upload(a, make_image())
    r = await a.patch(f"/api/v1/assets/{asset['id']}", json={"collectionId": col_b["id"]})
    assert r.status_code == 403


async def test_delete_hides_at_once(tenant):
    asset = await upload(tenant, make_image())
    url = f"/api/v1/assets/{asset['id']}"
    r = await tenant.delete(url)
    assert r.status_code == 200
    assert r.json() == {"id": asset["id"], "deleted": True}
    assert (await tenant.get(url)).status_code == 404
    assert (await tenant.get("/api/v1/assets")).json()["total"] == 0
    assert (await tenant.delete(url)).status_code == 404
    assert (await tenant.patch(url, json={"name": "x"})).status_code == 404


def _four_byte_text(rng: random.Random, length: int) -> str:
    """Incompressible text of four-byte UTF-8 characters (CJK Extension B)."""
    return "".join(chr(rng.randrange(0x20000, 0x2A6D6)) for _ in range(length))


async def test_the_largest_row_the_contract_allows_is_saved_and_found(tenant):
    """255-character names and 50 tags of 64 characters, every character four bytes of
    UTF-8: ~13 KB of tags that no compression shrinks. Every index built from the row has
    to take it (migration 0005's covering index held the whole tags and names, and such a
    row could not be written on PostgreSQL)."""
    rng = random.Random(7)
    tags = [_four_byte_text(rng, 64) for _ in range(50)]
    original = _four_byte_text(rng, 251) + ".jpg"
    asset = await upload(tenant, make_image(), filename=original, tags=tags)
    assert (asset["originalName"], asset["tags"]) == (original, tags)

    renamed, retagged = _four_byte_text(rng, 255), [_four_byte_text(rng, 64) for _ in range(50)]
    url = f"/api/v1/assets/{asset['id']}"
    r = await tenant.patch(url, json={"name": renamed, "tags": retagged})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["tags"]) == (renamed, retagged)
    assert without_facts((await tenant.get(url)).json()) == without_facts(r.json())

    async def found(query: str) -> list[str]:
        return await _all_ids(tenant, query)

    assert await found("&tags=" + quote(f"{retagged[7]},{retagged[49]}")) == [asset["id"]]
    assert await found("&tags=" + quote(tags[7])) == []  # replaced by the PATCH
    assert await found("&q=" + quote(renamed[100:110])) == [asset["id"]]
    assert await found("&q=" + quote(original[3:9]) + "&tags=" + quote(retagged[0])) == [
        asset["id"]
    ]


def _signature_bits(tag: str) -> set[int]:
    return {b % 62 for b in hashlib.md5(tag.encode()).digest()[:2]}


async def test_tags_with_the_same_signature_are_still_told_apart(tenant):
    """On PostgreSQL a tag filter first tests a 62-bit signature of the tags (two bits per
    tag, shared among many tags) and then the tags themselves. `twin` has the same bits as
    `tag-0` here: an asset tagged `tag-0` passes the signature test for `twin` but must not
    be listed."""
    twin = next(
        t
        for t in (f"twin-{i}" for i in range(100_000))
        if _signature_bits(t) == _signature_bits("tag-0")
    )
    rows = [{"tags": ["tag-0"] if i % 3 else [twin, "tag-0"]} for i in range(40)]
    ids = await seed_assets(tenant.org_id, rows)
    newest_first = list(reversed(ids))
    with_twin = [i for n, i in enumerate(ids) if n % 3 == 0][::-1]
    for size in (1, 4, 50):
        assert await _all_ids(tenant, "&tags=" + twin, page_size=size) == with_twin
        assert await _all_ids(tenant, f"&tags={twin},tag-0", page_size=size) == with_twin
        assert await _all_ids(tenant, "&tags=tag-0", page_size=size) == newest_first
    r = await tenant.get(f"/api/v1/assets?tags={twin}&pageSize=4&page=2")
    body = r.json()
    assert [a["id"] for a in body["items"]] == with_twin[4:8]
    assert (body["total"], body["totalPages"]) == (14, 4)
