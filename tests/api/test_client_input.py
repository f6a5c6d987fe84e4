"""Nothing a client writes may make a later read fail; every input has a bound.

Values that cannot be stored and read back exactly on every backend (non-finite numbers,
NUL characters, lone surrogates, over-long strings) are refused with 400 naming the field,
at write time and in filters, on GraphQL and REST alike; query-string numbers are ASCII
digits. Hypothesis checks that whatever is accepted reads back exactly.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import seed_assets

UNKNOWN_ID = "c" + "0" * 24

_UPDATE = """mutation($id: ID!, $input: UpdateAssetInput!) {
  updateAsset(id: $id, input: $input) { id name tags locationX locationY }
}"""


async def _asset(tenant: Any, **row: Any) -> str:
    (asset_id,) = await seed_assets(tenant.org_id, [row])
    return asset_id


def _error(body: dict[str, Any]) -> tuple[str, str]:
    (error,) = body["errors"]
    return error["extensions"]["code"], error["message"]


async def _reads_still_work(tenant: Any, asset_id: str) -> dict[str, Any]:
    r = await tenant.get(f"/api/v1/assets/{asset_id}")
    assert r.status_code == 200, r.text
    assert (await tenant.get("/api/v1/assets")).status_code == 200
    body = await tenant.gql("{ assets { items { id locationX locationY } } }")
    assert "errors" not in body, body
    return r.json()


# --- item 2: non-finite numbers ---------------------------------------------------------


@pytest.mark.parametrize(
    "literal", ["1e400", "-1e400", "1" * 400, "-" + "9" * 309 + ".5", "1.7976931348623159e308"]
)
async def test_non_finite_location_literal_is_refused(tenant: Any, literal: str) -> None:
    asset_id = await _asset(tenant)
    body = await tenant.gql(
        f'mutation {{ updateAsset(id: "{asset_id}", input: {{locationX: {literal}}}) {{ id }} }}'
    )
    assert _error(body) == ("BAD_REQUEST", "input.locationX must be a finite number")
    assert body.get("data") is None
    asset = await _reads_still_work(tenant, asset_id)
    assert asset["locationX"] == 0


@pytest.mark.parametrize("number", ["1e400", "NaN", "-Infinity", "Infinity"])
async def test_non_finite_numbers_in_json_name_the_field(tenant: Any, number: str) -> None:
    asset_id = await _asset(tenant)
    variables = {"id": asset_id, "input": {"locationY": "NUMBER"}}
    raw = json.dumps({"query": _UPDATE, "variables": variables}).replace('"NUMBER"', number)
    r = await tenant.post("/graphql", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert _error(r.json()) == ("BAD_REQUEST", "variables.input.locationY must be a finite number")
    r = await tenant.post(
        "/api/v1/export-presets",
        content='{"name": "p", "format": "JPEG", "quality": ' + number + "}",
        headers={"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()) == (400, {"error": "quality must be a finite number"})
    await _reads_still_work(tenant, asset_id)


async def test_negative_zero_and_extremes_read_back(tenant: Any) -> None:
    asset_id = await _asset(tenant)
    for x, y in ((-0.0, 5e-324), (1.7976931348623157e308, -2.2250738585072014e-308)):
        body = await tenant.gql(
            _UPDATE, {"id": asset_id, "input": {"locationX": x, "locationY": y}}
        )
        assert "errors" not in body, body
        asset = await _reads_still_work(tenant, asset_id)
        assert (asset["locationX"], asset["locationY"]) == (x + 0.0, y)


# --- item 11: NUL characters ------------------------------------------------------------


async def test_nul_in_rest_writes_and_filters(tenant: Any) -> None:
    asset_id = await _asset(tenant)
    cases = [
        ("PATCH", f"/api/v1/assets/{asset_id}", {"tags": ["a\u0000"]}, "tags[0]"),
        ("PATCH", f"/api/v1/assets/{asset_id}", {"name": "a\u0000b"}, "name"),
        ("POST", "/api/v1/collections", {"name": "x\u0000"}, "name"),
        ("POST", "/api/v1/export-presets", {"name": "p\u0000", "format": "JPEG"}, "name"),
        (
            "POST",
            "/api/v1/assets",
            {"mode": "presign", "originalName": "a\u0000.jpg", "mimeType": "image/jpeg", "size": 9},
            "originalName",
        ),
        ("GET", "/api/v1/assets?q=a%00b", None, "q"),
        ("GET", "/api/v1/assets?tags=a%00b", None, "tags"),
        ("GET", "/api/v1/collections?name=a%00", None, "name"),
        ("GET", f"/api/v1/assets/{asset_id}/export-url?preset=x%00", None, "preset"),
        ("GET", f"/api/v1/assets/{asset_id}/export-url?format=JPEG%00", None, "format"),
    ]
    for method, url, body, field in cases:
        r = await tenant.http.request(method, url, json=body, headers=tenant.auth)
        assert r.status_code == 400, (url, body, r.text)
        assert r.json() == {"error": f"{field} must not contain NUL characters"}, (url, body)
    asset = await _reads_still_work(tenant, asset_id)
    assert asset["tags"] == [] and asset["name"] == "asset-0000.jpg"


async def test_nul_in_graphql_literals_and_variables(tenant: Any) -> None:
    asset_id = await _asset(tenant)
    literals = [
        ('{ assets(q: "a\\u0000") { total } }', "q"),
        ('{ assets(tags: ["ok", "a\\u0000"]) { total } }', "tags[1]"),
        ('{ collections(name: "a\\u0000") { id } }', "name"),
        (f'{{ exportUrl(assetId: "{asset_id}", preset: "x\\u0000") {{ url }} }}', "preset"),
        (
            f'mutation {{ updateAsset(id: "{asset_id}", input: {{tags: ["a\\u0000"]}}) {{ id }} }}',
            "input.tags[0]",
        ),
        ('mutation { createApiKey(scopes: ["read"], name: "k\\u0000") { key } }', "name"),
    ]
    for query, field in literals:
        body = await tenant.gql(query)
        assert _error(body) == ("BAD_REQUEST", f"{field} must not contain NUL characters"), query
    body = await tenant.gql("query($q: String) { assets(q: $q) { total } }", {"q": "a\u0000b"})
    assert _error(body) == ("BAD_REQUEST", "variable q must not contain NUL characters")
    body = await tenant.gql(_UPDATE, {"id": asset_id, "input": {"tags": ["\u0000"]}})
    assert _error(body) == ("BAD_REQUEST", "variable input.tags[0] must not contain NUL characters")
    await _reads_still_work(tenant, asset_id)


async def test_lone_surrogate_literal_is_refused(tenant: Any) -> None:
    asset_id = await _asset(tenant)
    body = await tenant.gql(
        f'mutation {{ updateAsset(id: "{asset_id}", input: {{name: "a\\ud800"}}) {{ id }} }}'
    )
    # graphql-core's lexer refuses it already; the rule behind it says the same.
    code, message = _error(body)
    assert code == "BAD_REQUEST" and "Unicode" in message, message
    await _reads_still_work(tenant, asset_id)


# --- item 3: long values ----------------------------------------------------------------


async def test_long_filters_answer_400_naming_the_parameter(tenant: Any) -> None:
    asset_id = await _asset(tenant)
    cases = [
        ("/api/v1/collections?name=" + "n" * 201, "name may have at most 200 characters"),
        ("/api/v1/collections?name=" + "n" * 5000, "name may have at most 200 characters"),
        (
            f"/api/v1/assets/{asset_id}/export-url?preset=" + "p" * 300,
            "preset may have at most 100 characters",
        ),
        ("/api/v1/assets?q=" + "q" * 256, "q may have at most 255 characters"),
        ("/api/v1/assets?tags=" + "t" * 65, "a tag may have at most 64 characters"),
        ("/api/v1/assets?type=" + "I" * 5000, "type may have at most 4096 characters"),
        (
            "/api/v1/assets?collectionId=" + "c" * 5000,
            "collectionId may have at most 4096 characters",
        ),
    ]
    for url, message in cases:
        r = await tenant.get(url)
        assert (r.status_code, r.json()) == (400, {"error": message}), url[:80]
    long_preset = "p" * 300
    graphql = [
        ('{ collections(name: "%s") { id } }' % ("n" * 201), "name may have at most 200"),
        ('{ collections(name: "%s") { id } }' % ("n" * 5000), "name may have at most 4096"),
        (
            f'{{ exportUrl(assetId: "{asset_id}", preset: "{long_preset}") {{ url }} }}',
            "preset may have at most 100",
        ),
    ]
    for query, message in graphql:
        code, text = _error(await tenant.gql(query))
        assert code == "BAD_REQUEST" and text == message + " characters", text
    body = await tenant.gql("query($n: String) { collections(name: $n) { id } }", {"n": "n" * 201})
    assert _error(body) == ("BAD_REQUEST", "name may have at most 200 characters")
    await _reads_still_work(tenant, asset_id)


async def test_every_string_argument_has_a_bound(tenant: Any) -> None:
    """The whole class: every String/ID argument and input field of the schema, found by
    introspection, refuses a 600- and a 5,000-character value and a NUL with 400, never a 500.

    Every other required argument and input field gets a plausible value, so each probe is
    a complete call that reaches its resolver (a call missing a required argument would
    be refused by validation whatever the value under test)."""
    types = (
        await tenant.gql(
            """{ __schema { queryType { name } mutationType { name }
                 types { name kind enumValues { name }
                   fields { name args { name type { ...T } } }
                   inputFields { name type { ...T } } } } }
               fragment T on __Type { kind name ofType { kind name ofType { kind name
                 ofType { kind name } } } }"""
        )
    )["data"]["__schema"]
    by_name = {t["name"]: t for t in types["types"]}
    checked = 0
    for root in (types["queryType"]["name"], types["mutationType"]["name"]):
        for field in by_name[root]["fields"]:
            for arg_path, is_list in _string_targets(field, by_name):
                # past every column (the longest, a storage key, is 512), past the
                # bound of any string (4,096), and a NUL
                for bad in ("x" * 600, "x" * 5000, "x\u0000"):
                    checked += 1
                    variables = _call_values(field, by_name)
                    _put(variables, arg_path, [bad] if is_list else bad)
                    query = _document(root, field)
                    if checked % 50 == 0:  # the allowance is per key: a fresh one
                        tenant = await tenant.add_key("read,write,admin")
                    r = await tenant.post("/graphql", json={"query": query, "variables": variables})
                    where = (field["name"], arg_path)
                    assert r.status_code in (200, 400), (where, r.text)
                    errors = r.json().get("errors")
                    assert errors, (where, r.text)
                    assert "was not provided" not in errors[0]["message"], (where, errors)
                    assert errors[0]["extensions"]["code"] in ("BAD_REQUEST", "NOT_FOUND"), (
                        where,
                        errors,
                    )
    assert checked >= 80


def _leaf(t: dict[str, Any]) -> tuple[str, bool]:
    is_list = False
    while t["kind"] in ("NON_NULL", "LIST"):
        is_list = is_list or t["kind"] == "LIST"
        t = t["ofType"]
    return t["name"], is_list


def _string_targets(field: dict[str, Any], by_name: dict[str, Any]) -> list[tuple[tuple, bool]]:
    """(path in the variables, is a list) of every String/ID argument or input field."""
    targets: list[tuple[tuple, bool]] = []
    for arg in field["args"]:
        name, is_list = _leaf(arg["type"])
        if name in ("String", "ID"):
            targets.append(((arg["name"],), is_list))
        elif by_name[name]["kind"] == "INPUT_OBJECT":
            for sub in by_name[name]["inputFields"]:
                sub_name, sub_list = _leaf(sub["type"])
                if sub_name in ("String", "ID"):
                    targets.append(((arg["name"], sub["name"]), sub_list))
    return targets


_PLAIN = {"String": "x", "ID": UNKNOWN_ID, "Int": 1, "Long": 1, "Float": 0.5, "Boolean": False}


def _plain_value(t: dict[str, Any], by_name: dict[str, Any]) -> Any:
    """A well-formed value of a type (its required input fields filled in)."""
    name, is_list = _leaf(t)
    kind = by_name[name]["kind"]
    if kind == "INPUT_OBJECT":
        value: Any = {
            sub["name"]: _plain_value(sub["type"], by_name)
            for sub in by_name[name]["inputFields"]
            if sub["type"]["kind"] == "NON_NULL"
        }
    elif kind == "ENUM":
        value = by_name[name]["enumValues"][0]["name"]
    else:
        value = _PLAIN.get(name, "x")
    return [value] if is_list else value


def _call_values(field: dict[str, Any], by_name: dict[str, Any]) -> dict[str, Any]:
    return {arg["name"]: _plain_value(arg["type"], by_name) for arg in field["args"]}


def _put(variables: dict[str, Any], path: tuple, value: Any) -> None:
    if len(path) == 1:
        variables[path[0]] = value
    else:
        variables[path[0]][path[1]] = value


def _document(root: str, field: dict[str, Any]) -> str:
    def spell(t: dict[str, Any]) -> str:
        if t["kind"] == "NON_NULL":
            return spell(t["ofType"]) + "!"
        if t["kind"] == "LIST":
            return f"[{spell(t['ofType'])}]"
        return t["name"]

    op = "query" if root == "Query" else "mutation"
    selection = {
        "assets": "{ total }",
        "asset": "{ id }",
        "collections": "{ id }",
        "exportUrl": "{ url }",
        "exportPresets": "{ id }",
        "viewer": "{ __typename }",
        "apiKeys": "{ id }",
    }.get(field["name"], "{ __typename }")
    params = ", ".join(f"${a['name']}: {spell(a['type'])}" for a in field["args"])
    args = ", ".join(f"{a['name']}: ${a['name']}" for a in field["args"])
    return f"{op}({params}) {{ {field['name']}({args}) {selection} }}"


# --- item 12: ASCII digits --------------------------------------------------------------


@pytest.mark.parametrize("value", ["1_0", "+5", " 5", "5 ", "\u0663", "0x10", "1e3", "5.0"])
async def test_query_string_numbers_are_ascii_digits(tenant: Any, value: str) -> None:
    asset_id = await _asset(tenant)
    for url, name in [
        ("/api/v1/assets?page={}", "page"),
        ("/api/v1/assets?pageSize={}", "pageSize"),
        (f"/api/v1/assets/{asset_id}/export-url?format=PNG&quality={{}}", "quality"),
        (f"/api/v1/assets/{asset_id}/export-url?maxWidth={{}}", "maxWidth"),
        (f"/api/v1/assets/{asset_id}/export-url?maxHeight={{}}", "maxHeight"),
        (f"/api/v1/assets/{asset_id}/export-url?format=PNG&ttl={{}}", "ttl"),
    ]:
        r = await tenant.get(url.format(value))
        assert r.status_code == 400, (url, value, r.text)
        assert r.json() == {"error": f"{name} must be a whole number (ASCII digits)"}


@pytest.mark.parametrize("value", ["2147483648", "99999999999", "9" * 20, "-" + "9" * 4000])
async def test_query_string_numbers_past_32_bits_are_out_of_range(tenant: Any, value: str) -> None:
    """Digits are digits: an 11-digit page was "not a whole number" while a 10-digit one
    past 2^31 was "out of range"."""
    r = await tenant.get(f"/api/v1/assets?page={value}")
    assert (r.status_code, r.json()) == (400, {"error": "page is out of range"})


async def test_plain_digits_still_work(tenant: Any) -> None:
    r = await tenant.get("/api/v1/assets?page=1&pageSize=10")
    assert r.status_code == 200 and r.json()["pageSize"] == 10
    r = await tenant.get("/api/v1/assets?page=-1")
    assert (r.status_code, r.json()) == (400, {"error": "page must be 1 or more"})
    r = await tenant.get("/api/v1/assets?page=2147483647")
    assert r.status_code == 200 and r.json()["items"] == []


# --- item 12: Allow on every 405 --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/assets", "GET, HEAD, POST"),
        ("DELETE", "/api/v1/collections", "GET, HEAD, POST"),
        ("POST", "/api/v1/assets/{id}", "GET, HEAD, PATCH, DELETE"),
        ("PUT", "/api/v1/assets/{id}/export-url", "GET, HEAD"),
        ("DELETE", "/graphql", "GET, HEAD, POST"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
async def test_every_405_carries_allow(tenant: Any, method: str, path: str, allow: str) -> None:
    r = await tenant.http.request(method, path.format(id=UNKNOWN_ID), headers=tenant.auth)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    if path.startswith("/api"):
        assert r.json() == {"error": "method not allowed"}


async def test_graphql_mutation_over_get_is_405_with_allow(tenant: Any) -> None:
    r = await tenant.get("/graphql", params={"query": "mutation { __typename }"})
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    "invisible",
    ["\u200b", "\u200b\u200f\ufeff", "\u202e\u2060", " \u3000\u200d "],
    ids=["zero-width-space", "zwsp-rlm-bom", "rlo-word-joiner", "ideographic-space-zwj"],
)
async def test_names_of_invisible_characters_are_refused(tenant: Any, invisible: str) -> None:
    """A name that shows nothing (zero-width, bidi marks, BOM, separators) is as empty as
    "": refused on every write that takes a name; a tag of them is dropped like a blank one."""
    asset_id = await _asset(tenant)
    message = "name must have a visible character"
    writes = [
        ("POST", "/api/v1/collections", {"name": invisible}),
        ("POST", "/api/v1/export-presets", {"name": invisible, "format": "webp"}),
        ("PATCH", f"/api/v1/assets/{asset_id}", {"name": invisible}),
    ]
    for method, path, body in writes:
        send = tenant.post if method == "POST" else tenant.patch
        r = await send(path, json=body)
        assert (r.status_code, r.json()) == (400, {"error": message}), (path, r.text)
    r = await tenant.patch(f"/api/v1/assets/{asset_id}", json={"tags": [invisible, "kept"]})
    assert (r.status_code, r.json()["tags"]) == (200, ["kept"]), r.text
    visible = await tenant.post("/api/v1/collections", json={"name": f"a{invisible}b"})
    assert visible.status_code == 201, visible.text  # invisible characters inside are fine


async def test_a_tags_filter_past_the_limit_says_filter(tenant: Any) -> None:
    tags = ",".join(f"t{i}" for i in range(51))
    r = await tenant.get("/api/v1/assets", params={"tags": tags})
    assert (r.status_code, r.json()) == (400, {"error": "the tags filter may list at most 50 tags"})


# --- round trips: whatever is accepted reads back exactly --------------------------------

_ROUND_TRIP = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Any text JSON can carry (no lone surrogates), biased towards the awkward: NUL, controls,
# combining marks, astral characters, whitespace, and lengths around the limits.
texts = st.one_of(
    st.text(max_size=80),
    st.text(st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(
        [
            "\u0000",
            " a ",
            "e\u0301",
            "😀" * 64,
            "\u00a0x",
            "a\u0000b",
            "%_\\",
            "\u200b\ufeff",
            "\x7f",
        ]
    ),
)


def _expected_name(value: str, limit: int) -> tuple[int, str | None]:
    name = value.strip()
    if not name:
        return 400, None
    if len(name) > limit:
        return 400, f"name may have at most {limit} characters"
    if "\u0000" in name:
        return 400, "name must not contain NUL characters"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return 400, "name must not contain control characters"
    if all(unicodedata.category(c) in ("Cf", "Zs", "Zl", "Zp") for c in name):
        return 400, "name must have a visible character"
    return 200, name


def _visible(tag: str) -> bool:
    return not all(unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp") for c in tag)


@_ROUND_TRIP
@given(name=texts, tags=st.lists(texts, max_size=4), x=st.floats(), y=st.floats(width=32))
async def test_asset_fields_round_trip(
    make_tenant: Any, name: str, tags: list[str], x: float, y: float
) -> None:
    tenant = await make_tenant()  # a key per example: each has its own allowance
    asset_id = await _asset(tenant)
    body = await tenant.gql(
        _UPDATE,
        {"id": asset_id, "input": {"name": name, "tags": tags}},
    )
    status, expected = _expected_name(name, 255)
    clean = []
    for t in tags:
        if _visible(t.strip()) and t.strip() not in clean:
            clean.append(t.strip())
    tags_ok = all("\u0000" not in t and len(t.strip()) <= 64 for t in tags)
    if status == 200 and tags_ok:
        assert "errors" not in body, (name, tags, body)
        asset = await _reads_still_work(tenant, asset_id)
        assert (asset["name"], asset["tags"]) == (expected, clean)
        for tag in clean:
            r = await tenant.get("/api/v1/assets", params={"tags": tag.replace(",", "")})
            assert r.status_code == 200, r.text
        r = await tenant.get("/api/v1/assets", params={"q": expected})
        assert asset_id in [a["id"] for a in r.json()["items"]]
    else:
        assert _error(body)[0] == "BAD_REQUEST", body
    # Floats: only what JSON carries reaches here; non-finite ones are tested above.
    import math

    if math.isfinite(x) and math.isfinite(y):
        body = await tenant.gql(
            _UPDATE, {"id": asset_id, "input": {"locationX": x, "locationY": y}}
        )
        assert "errors" not in body, body
        asset = await _reads_still_work(tenant, asset_id)
        assert (asset["locationX"], asset["locationY"]) == (x + 0.0, y + 0.0)


@_ROUND_TRIP
@given(name=texts, color=st.sampled_from(["#A1b2C3", "#a1b2c3\n", "#fff", None]))
async def test_collection_fields_round_trip(make_tenant: Any, name: str, color: str | None) -> None:
    tenant = await make_tenant()  # a key per example: each has its own allowance
    payload: dict[str, Any] = {"name": name}
    if color is not None:
        payload["color"] = color
    r = await tenant.post("/api/v1/collections", json=payload)
    status, expected = _expected_name(name, 200)
    if color is not None and color != "#A1b2C3" and status == 200:
        assert (r.status_code, r.json()) == (400, {"error": "color must be #rrggbb"})
        return
    assert r.status_code in ((200, 201) if status == 200 else (400,)), (name, r.text)
    if status != 200:
        return
    assert r.json()["name"] == expected
    if color is not None and r.status_code == 201:
        assert r.json()["color"] == "#a1b2c3"
    listed = await tenant.get("/api/v1/collections", params={"name": expected})
    assert [c["name"] for c in listed.json()["collections"]] == [expected]
    body = await tenant.gql("query($n: String) { collections(name: $n) { name } }", {"n": expected})
    assert body["data"]["collections"] == [{"name": expected}]


@_ROUND_TRIP
@given(
    name=texts,
    quality=st.one_of(st.none(), st.integers(-5, 105)),
    width=st.one_of(st.none(), st.integers(0, 17000)),
)
async def test_preset_fields_round_trip(
    make_tenant: Any, name: str, quality: int | None, width: int | None
) -> None:
    tenant = await make_tenant()  # a key per example: each has its own allowance
    payload: dict[str, Any] = {
        "name": name,
        "format": "webp",
        "quality": quality,
        "maxWidth": width,
    }
    r = await tenant.post("/api/v1/export-presets", json=payload)
    status, expected = _expected_name(name, 100)
    q_ok = quality is None or 1 <= quality <= 100
    w_ok = width is None or 1 <= width <= 16384
    if status != 200 or not q_ok or not w_ok:
        assert r.status_code == 400, (payload, r.text)
        return
    assert r.status_code in (200, 201), r.text
    listed = (await tenant.get("/api/v1/export-presets")).json()["presets"]
    (preset,) = [p for p in listed if p["name"] == expected]
    assert (preset["format"], preset["quality"], preset["maxWidth"]) == (
        "WEBP",
        85 if quality is None else quality,
        width,
    )


@_ROUND_TRIP
@given(name=st.one_of(texts, st.text(min_size=195, max_size=205)))
async def test_api_key_names_round_trip(make_tenant: Any, name: str) -> None:
    tenant = await make_tenant()  # a key per example: each has its own allowance
    body = await tenant.gql(
        'mutation($n: String!) { createApiKey(scopes: ["read"], name: $n) { apiKey { id name } } }',
        {"n": name},
    )
    if len(name) > 200 or "\u0000" in name:
        assert _error(body)[0] == "BAD_REQUEST", body
        return
    assert "errors" not in body, body
    created = body["data"]["createApiKey"]["apiKey"]
    assert created["name"] == name.strip()
    listed = (await tenant.gql("{ apiKeys { id name } }"))["data"]["apiKeys"]
    assert {"id": created["id"], "name": name.strip()} in listed


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(original=texts, display=st.one_of(st.none(), texts))
async def test_upload_names_round_trip(
    make_tenant: Any, original: str, display: str | None
) -> None:
    """originalName and name through presign → PUT → finalize, on the real object stores."""
    from tests.helpers import make_image, presign

    tenant = await make_tenant()
    data = make_image(8, 8)
    r = await presign(tenant, original, "image/jpeg", len(data))
    status, expected = _expected_name(original, 255)
    if status != 200:
        assert r.status_code == 400, (original, r.text)
        assert "originalName" in r.json()["error"] or "name" in r.json()["error"]
        return
    assert r.status_code == 200, (original, r.text)
    ticket = r.json()
    put = await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert put.status_code == 200, put.text
    finalize: dict[str, Any] = {
        "mode": "finalize",
        "originalName": original,
        "mimeType": "image/jpeg",
        "size": len(data),
        "storageKey": ticket["storageKey"],
    }
    if display is not None:
        finalize["name"] = display
    r = await tenant.post("/api/v1/assets", json=finalize)
    shown_status, shown = _expected_name(display, 255) if display is not None else (200, expected)
    if shown_status != 200:
        assert r.status_code == 400, (display, r.text)
        return
    assert r.status_code == 201, r.text
    asset = await _reads_still_work(tenant, r.json()["id"])
    assert (asset["originalName"], asset["name"]) == (expected, shown)
    r = await tenant.get("/api/v1/assets", params={"q": expected})
    assert asset["id"] in [a["id"] for a in r.json()["items"]]


# --- ids in REST paths ------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["x" * 30, "%00", UNKNOWN_ID + "%00", "c" + "0" * 23 + "%00"])
async def test_a_malformed_id_in_any_rest_path_is_not_found(tenant: Any, bad_id: str) -> None:
    """Every route with an id in its path: longer than the column, or with a NUL (which
    PostgreSQL refuses), the id is unknown: 404, never a 500."""
    for method, path in [
        ("GET", "/api/v1/assets/{}"),
        ("PATCH", "/api/v1/assets/{}"),
        ("DELETE", "/api/v1/assets/{}"),
        ("GET", "/api/v1/assets/{}/export-url?format=PNG"),
        ("PATCH", "/api/v1/webhooks/{}"),
        ("DELETE", "/api/v1/webhooks/{}"),
        ("POST", "/api/v1/webhooks/{}/test"),
        ("GET", "/api/v1/webhooks/{}/deliveries"),
    ]:
        body = {"json": {}} if method == "PATCH" else {}
        r = await tenant.http.request(method, path.format(bad_id), headers=tenant.auth, **body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"].endswith(" not found"), (method, path, r.text)


# --- lists answered whole: bounded counts -----------------------------------------------


async def _at_once(tenant: Any, path: str, bodies: list[dict[str, Any]]) -> list[Any]:
    """POST each body at the same moment, each with a key of its own (no 429)."""
    keys = [await tenant.add_key("read,write,admin") for _ in bodies]
    return await asyncio.gather(*(k.post(path, json=b) for k, b in zip(keys, bodies, strict=True)))


async def test_collections_stop_at_10000_and_still_list(tenant: Any) -> None:
    """Collections are listed in one answer; without a bound, 50,001 of them made every
    later GET /api/v1/collections and GraphQL `collections` answer 400 ("the answer holds
    more than 50000 objects"). Five creates at once at 9,999: exactly one is made."""
    from pixelwand.models import Collection

    await Collection.bulk_create(
        [Collection(organization_id=tenant.org_id, name=f"c{i}") for i in range(9_999)],
        batch_size=2_000,
    )
    answers = await _at_once(tenant, "/api/v1/collections", [{"name": f"n{i}"} for i in range(5)])
    assert sorted(r.status_code for r in answers) == [201, 400, 400, 400, 400]
    assert {r.json()["error"] for r in answers if r.status_code == 400} == {
        "an organization may have at most 10000 collections"
    }
    r = await tenant.get("/api/v1/collections")
    assert r.status_code == 200 and len(r.json()["collections"]) == 10_000
    body = await tenant.gql("{ collections { id } }")
    assert "errors" not in body and len(body["data"]["collections"]) == 10_000
    existing = await tenant.post("/api/v1/collections", json={"name": "c5"})
    assert existing.status_code == 200  # an existing name still answers its collection


async def test_export_presets_stop_at_1000_and_still_list(tenant: Any) -> None:
    from pixelwand.models import ExportPreset

    await ExportPreset.bulk_create(
        [
            ExportPreset(organization_id=tenant.org_id, name=f"p{i}", format="WEBP")
            for i in range(999)
        ]
    )
    bodies = [{"name": f"n{i}", "format": "PNG"} for i in range(5)]
    answers = await _at_once(tenant, "/api/v1/export-presets", bodies)
    assert sorted(r.status_code for r in answers) == [201, 400, 400, 400, 400]
    assert {r.json()["error"] for r in answers if r.status_code == 400} == {
        "an organization may have at most 1000 export presets"
    }
    r = await tenant.post("/api/v1/export-presets", json={"name": "p7", "format": "PNG"})
    assert r.status_code == 200  # updating an existing preset needs no room
    r = await tenant.get("/api/v1/export-presets")
    assert r.status_code == 200 and len(r.json()["presets"]) == 1_000


async def test_api_keys_stop_at_10000_and_still_list(tenant: Any) -> None:
    """Revoked keys are listed too: without a bound, `apiKeys` of an organization that made
    50,001 keys answered QUERY_TOO_COMPLEX."""
    from pixelwand.models import ApiKey

    await ApiKey.bulk_create(
        [
            ApiKey(
                organization_id=tenant.org_id,
                key_hash=f"{tenant.org_id}{i:039d}",
                prefix="ak_live_x",
                scopes="read",
            )
            for i in range(9_998)  # and the tenant's own key: 9,999
        ],
        batch_size=2_000,
    )
    create = 'mutation { createApiKey(scopes: ["read"], name: "k") { key } }'
    answers = await asyncio.gather(
        *(tenant.post("/graphql", json={"query": create}) for _ in range(3))
    )
    errors = [r.json().get("errors") for r in answers]
    assert sum(e is None for e in errors) == 1, errors
    refused = {e[0]["message"] for e in errors if e}
    assert refused == {"an organization may have at most 10000 API keys (revoked ones count)"}
    body = await tenant.gql("{ apiKeys { id } }")
    assert "errors" not in body and len(body["data"]["apiKeys"]) == 10_000


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("ä", {"ÄÖ.jpg", "ärger.png"}),
        ("Ä", {"ÄÖ.jpg", "ärger.png"}),
        ("äö", {"ÄÖ.jpg"}),
        (
            "\u03c3",
            {"\u03a3\u039f\u03a6\u038a\u0391.jpg"},
        ),  # Greek small sigma finds SOFIA in capitals
        ("straße", {"Straße.jpg"}),  # ß has no one-letter upper case: it matches itself
        ("STRASSE", set()),
        ("plain", {"plain.jpg"}),
        ("%", set()),  # a LIKE wildcard is a literal
    ],
)
async def test_q_folds_case_beyond_ascii_alike_on_every_backend(
    tenant: Any, q: str, found: set[str]
) -> None:
    """SQLite's UPPER and LIKE fold ASCII letters only; PostgreSQL's upper() folds every
    letter: `q=ä` found "ÄÖ.jpg" on PostgreSQL only. Now the same answer on both."""
    greek = "\u03a3\u039f\u03a6\u038a\u0391.jpg"  # SOFIA in Greek capitals
    names = ["ÄÖ.jpg", "ärger.png", greek, "Straße.jpg", "plain.jpg", "other.jpg"]
    await seed_assets(tenant.org_id, [{"name": n} for n in names])
    r = await tenant.get("/api/v1/assets", params={"q": q, "pageSize": 50})
    assert r.status_code == 200, r.text
    assert {a["name"] for a in r.json()["items"]} == found
    assert r.json()["total"] == len(found)
