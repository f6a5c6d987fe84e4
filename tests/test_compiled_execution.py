"""The compiled execution path answers exactly what graphql-core answers.

Every stored query operation (the REST routes) and a few ad-hoc documents run through both
paths on generated rows, generated errors and deliberately invalid values (nulls where the
schema says non-null, non-finite floats), and the formatted responses must be identical.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from inspect import isawaitable
from typing import Any

import pytest
from graphql import GraphQLError, execute
from graphql.execution.values import get_argument_values, get_variable_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat_rest.operations import stored_operations
from pixelwand.auth import Principal
from pixelwand.errors import BadRequest, Forbidden, NotFound
from pixelwand.plans import Plan
from pixelwand.services import assets, collections, presets
from pixelwand.services.records import AssetRecord, CollectionRecord, Page, PresetRecord
from pixelwand.services.renditions import ExportUrl
from schema import documents, schema
from schema.context import Context
from schema.errors import format_error
from schema.execution import execute_prepared
from schema.execution.executor import run_compiled

ids = st.from_regex(r"c[0-9a-z]{24}", fullmatch=True)
text = st.text(max_size=20)
when = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64), st.just(float("inf"))
)
maybe_null_text = st.one_of(text, st.none())  # None where non-null: both must error alike
# Mostly lists of strings (the compiled path passes those through whole); also other items
# the String serializer converts or refuses, and sequences that are not lists.
tag_lists = st.one_of(
    st.lists(text, max_size=4),
    st.lists(st.one_of(text, st.integers(), st.booleans(), st.floats(), st.none()), max_size=4),
    st.lists(text, max_size=4).map(tuple),
)


@st.composite
def asset_records(draw: Any) -> AssetRecord:
    return AssetRecord(
        id=draw(ids),
        organization_id=draw(ids),
        name=draw(maybe_null_text),
        original_name=draw(text),
        size=draw(st.integers(min_value=0, max_value=2**53)),
        mime_type=draw(st.sampled_from(["image/jpeg", "image/png", "video/mp4"])),
        media_type=draw(st.sampled_from(["IMAGE", "VIDEO"])),
        storage_key=draw(text),
        tags=draw(tag_lists),
        collection_id=draw(st.one_of(st.none(), ids)),
        location_x=draw(floats),
        location_y=draw(floats),
        width=draw(st.one_of(st.none(), st.integers(min_value=-(2**32), max_value=2**32))),
        height=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=2**31 - 1))),
        uploaded_at=draw(when),
    )


collection_records = st.builds(
    CollectionRecord, ids, ids, text, st.one_of(st.none(), ids), text, when
)
preset_records = st.builds(
    PresetRecord,
    ids,
    ids,
    text,
    st.sampled_from(["JPEG", "PNG", "WEBP", "AVIF"]),
    st.integers(1, 100),
    st.one_of(st.none(), st.integers(1, 16384)),
    st.one_of(st.none(), st.integers(1, 16384)),
    st.booleans(),
    when,
    when,
    st.one_of(st.none(), st.sampled_from(["auto:high", "auto:85"])),
    st.one_of(st.none(), st.lists(st.sampled_from(["AVIF", "WEBP", "JPEG", "PNG"]), max_size=4)),
)
errors = st.sampled_from(
    [
        BadRequest("pageSize must be between 1 and 200"),
        NotFound("asset c123 not found"),
        Forbidden("asset c123 belongs to another organization"),
        RuntimeError("boom"),
    ]
)


def outcome(values: Any) -> Any:
    """A result or an error to raise, as a service would."""
    return st.one_of(values, errors)


class _Renditions:
    def __init__(self, result: Any) -> None:
        self.result = result

    async def export_url(self, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@dataclasses.dataclass
class _Runtime:
    renditions: Any


def _context(result: Any) -> Context:
    principal = Principal(
        "c" + "k" * 24,
        "c" + "o" * 24,
        "Org",
        Plan.ENTERPRISE,
        frozenset({"read", "write", "admin"}),
    )
    return Context(runtime=_Runtime(_Renditions(result)), principal=principal)  # type: ignore[arg-type]


# What the patched services were called with, in order: both paths must pass the same.
_calls: list[tuple[str, tuple, dict]] = []


def _patch(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, result: Any) -> None:
    async def fake(*args: Any, **kwargs: Any) -> Any:
        _calls.append((name, args, kwargs))
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(target, name, fake)


def _body(result: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [format_error(e) for e in result.errors]
    return body


async def _both(prepared: Any, variables: dict[str, Any], context: Any) -> tuple[dict, dict]:
    """Both paths' answers; also checks that they called the services alike."""
    plan = prepared.plan(schema._schema, None)
    assert plan is not None, "this document must compile"
    _calls.clear()
    compiled = await execute_prepared(schema._schema, prepared, variables, context)
    compiled_calls = list(_calls)
    _calls.clear()
    reference = execute(
        schema._schema, prepared.document, context_value=context, variable_values=variables
    )
    if isawaitable(reference):
        reference = await reference
    # A compiled answer that falls back (a null where the schema says non-null) calls the
    # service again through graphql-core: twice, each time alike.
    assert compiled_calls in (_calls, _calls * 2), "the services got other arguments"
    return _body(compiled), _body(reference)


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# Variable values as clients send them: mostly valid, sometimes of another type, out of
# range, null or left out (a key missing from the dict), so that both the fast coercion
# (variables.py) and graphql-core's, with its errors, are compared.
def _maybe(values: Any, odd: Any = None) -> Any:
    """Mostly `values`; sometimes `odd`, null or left out."""
    rare = [st.none(), st.just(_LEFT_OUT)] + ([odd] if odd is not None else [])
    return st.one_of(values, values, values, *rare)


_LEFT_OUT = object()
odd_values = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(),
    st.booleans(),
    text,
    st.lists(st.one_of(text, st.integers()), max_size=3),
)
list_variables = st.fixed_dictionaries(
    {
        "q": _maybe(text, odd_values),
        "type": st.one_of(st.none(), st.just(_LEFT_OUT), st.sampled_from(["IMAGE", "image"])),
        "collectionId": _maybe(ids, st.integers()),
        "tags": _maybe(st.lists(text, max_size=3), st.one_of(text, odd_values)),
        "page": _maybe(st.integers(1, 5), odd_values),
        "pageSize": _maybe(st.integers(1, 200), odd_values),
    }
).map(lambda v: {k: x for k, x in v.items() if x is not _LEFT_OUT})


@SETTINGS
@given(
    result=outcome(st.lists(asset_records(), max_size=6)),
    total=st.integers(0, 10_000),
    variables=list_variables,
)
async def test_list_assets(
    monkeypatch: pytest.MonkeyPatch, result: Any, total: int, variables: dict[str, Any]
) -> None:
    page = result if isinstance(result, Exception) else Page(result, 1, 50, max(total, len(result)))
    _patch(monkeypatch, assets, "list_assets", page)
    op = stored_operations()["list_assets"]
    compiled, reference = await _both(op.prepared, variables, _context(None))
    assert compiled == reference


@SETTINGS
@given(result=outcome(asset_records()), asset_id=st.one_of(ids, text, odd_values, st.none()))
async def test_get_asset(monkeypatch: pytest.MonkeyPatch, result: Any, asset_id: str) -> None:
    _patch(monkeypatch, assets, "get_asset", result)
    op = stored_operations()["get_asset"]
    compiled, reference = await _both(op.prepared, {"id": asset_id}, _context(None))
    assert compiled == reference


@SETTINGS
@given(result=outcome(st.lists(collection_records, max_size=5)))
async def test_list_collections(monkeypatch: pytest.MonkeyPatch, result: Any) -> None:
    _patch(monkeypatch, collections, "list_collections", result)
    op = stored_operations()["list_collections"]
    variables = {"name": None, "parentId": None, "topLevelOnly": False}
    compiled, reference = await _both(op.prepared, variables, _context(None))
    assert compiled == reference


@SETTINGS
@given(result=outcome(st.lists(preset_records, max_size=5)))
async def test_list_export_presets(monkeypatch: pytest.MonkeyPatch, result: Any) -> None:
    _patch(monkeypatch, presets, "list_presets", result)
    op = stored_operations()["list_export_presets"]
    compiled, reference = await _both(op.prepared, {}, _context(None))
    assert compiled == reference


@SETTINGS
@given(
    result=outcome(
        st.builds(
            ExportUrl,
            ids,
            text,
            st.sampled_from(["JPEG", "PNG", "WEBP", "AVIF"]),
            st.integers(60, 86400),
            when,
            st.booleans(),
            st.integers(1, 8000),
            st.integers(1, 8000),
            st.integers(1, 2**40),
            st.integers(1, 100),
            st.one_of(st.none(), st.floats(-50, 100)),
            st.one_of(st.none(), st.sampled_from(["auto:high", "auto:42"])),
        )
    )
)
async def test_export_url(result: Any) -> None:
    op = stored_operations()["export_url"]
    variables = {"assetId": "c" + "a" * 24, "format": "WEBP", "ttl": 600}
    compiled, reference = await _both(op.prepared, variables, _context(result))
    assert compiled == reference


AD_HOC = [
    # aliases, repeated fields, fragments, inline fragments, __typename
    """query Q($p: Int!) { a: assets(page: $p, pageSize: 5) { __typename total items {
         id ... on Asset { name n2: name } ...F } } }
       fragment F on Asset { tags uploadedAt mediaType }""",
    "{ exportPresets { name quality maxWidth __typename } }",
]


@SETTINGS
@given(result=outcome(st.lists(asset_records(), max_size=4)), presets_=st.lists(preset_records))
@pytest.mark.parametrize("source", AD_HOC)
async def test_ad_hoc_documents(
    monkeypatch: pytest.MonkeyPatch, source: str, result: Any, presets_: list
) -> None:
    page = result if isinstance(result, Exception) else Page(result, 1, 5, len(result))
    _patch(monkeypatch, assets, "list_assets", page)
    _patch(monkeypatch, presets, "list_presets", presets_)
    prepared = documents.prepare(source)
    compiled, reference = await _both(prepared, {"p": 1}, _context(None))
    assert compiled == reference


@pytest.mark.parametrize(
    "source",
    [
        "{ assets { items { collection { id } } } }",  # a resolver below the root
        "{ assets { items { id @include(if: true) } } }",  # directives
        "{ __schema { queryType { name } } }",  # introspection
        'mutation { deleteAsset(id: "x") { id } }',  # mutations never compile
        '{ asset(id: "x") { originalUrl } }',  # a field with arguments and a resolver
    ],
)
def test_what_does_not_compile_falls_back(source: str) -> None:
    prepared = documents.prepare(source)
    assert prepared.document is not None, prepared.errors
    assert prepared.plan(schema._schema, None) is None


def test_every_stored_query_compiles() -> None:
    """And calls its resolver directly, with a fast path for its variables."""
    for op in stored_operations().values():
        if op.scope == "read":
            plan = op.prepared.plan(schema._schema, None)
            assert plan is not None, op.name
            assert all(field.direct for field in plan.fields), op.name
            assert plan.coerce_variables is not None, op.name


@settings(max_examples=500, deadline=None)
@given(
    variables=list_variables,
    export=st.fixed_dictionaries(
        {},
        optional={
            "assetId": st.one_of(ids, odd_values, st.none()),
            "quality": st.one_of(st.integers(1, 100), odd_values, st.none()),
            "preserveAspect": st.one_of(st.booleans(), odd_values, st.none()),
            "format": st.one_of(text, odd_values, st.none()),
            "perceptual": st.one_of(text, odd_values, st.none()),
            "formats": st.one_of(st.lists(text, max_size=3), odd_values, st.none()),
        },
    ),
)
def test_fast_variable_coercion_equals_graphql_core(
    variables: dict[str, Any], export: dict[str, Any]
) -> None:
    """Where the fast path answers, graphql-core answers the same; it answers for valid input."""
    for name, inputs in (("list_assets", variables), ("export_url", export)):
        plan = stored_operations()[name].prepared.plan(schema._schema, None)
        assert plan is not None and plan.coerce_variables is not None
        fast = plan.coerce_variables(inputs)
        reference = get_variable_values(
            schema._schema, plan.operation.variable_definitions or (), inputs
        )
        if fast is not None:
            assert not isinstance(reference, list), reference
            assert fast.coerced == reference.coerced
            assert _sources(fast) == _sources(reference)
        if isinstance(reference, list):
            continue
        # The root field's arguments: where the fast path answers, as graphql-core does.
        for field in plan.fields:
            assert field.arguments is not None
            fast_args = field.arguments(reference)
            try:
                expected = get_argument_values(field.field_def, field.field_node, reference)
            except GraphQLError:
                assert fast_args is None
                continue
            if fast_args is not None:
                assert fast_args == expected


def _sources(values: Any) -> dict[str, tuple]:
    # Signatures hold type wrappers (NonNull, List) that graphql-core builds anew each time
    # and compares by identity: compare what they say.
    return {
        name: (s.signature.name, str(s.signature.type), s.signature.default, s.value)
        for name, s in values.sources.items()
    }


def test_fast_variable_coercion_takes_what_rest_sends() -> None:
    plan = stored_operations()["list_assets"].prepared.plan(schema._schema, None)
    assert plan is not None and plan.coerce_variables is not None
    rest = {"q": "cat", "type": None, "collectionId": None, "tags": ["a", "b"], "page": 1,
            "pageSize": 50, "contentHash": None}  # fmt: skip
    fast = plan.coerce_variables(rest)
    assert fast is not None and fast.coerced == rest
    assert fast.coerced["tags"] is not rest["tags"]  # a copy, as graphql-core makes
    assert plan.coerce_variables({**rest, "type": "IMAGE"}) is None  # enums: graphql-core
    assert plan.coerce_variables({**rest, "page": 2**31}) is None  # out of Int's range
    arguments = plan.fields[0].arguments
    assert arguments is not None
    assert arguments(fast) == {**rest, "pageSize": 50}  # the same, by argument name
    without_page = plan.coerce_variables({k: v for k, v in rest.items() if k != "page"})
    assert without_page is None  # $page is Int!: graphql-core words the error


async def test_compiled_path_is_really_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard against a silent fallback: the compiled runner itself answers."""
    _patch(monkeypatch, presets, "list_presets", [])
    op = stored_operations()["list_export_presets"]
    plan = op.prepared.plan(schema._schema, None)
    result = await run_compiled(schema._schema, plan, {}, _context(None))
    assert result.data == {"exportPresets": []}


def test_fields_with_extensions_keep_strawberrys_wrapper() -> None:
    """Permission classes (an extension) must run: such a field is not called directly."""
    import strawberry
    from strawberry.permission import BasePermission

    from schema.execution.resolvers import direct_caller

    class Never(BasePermission):
        message = "no"

        def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
            return False

    @strawberry.type
    class Query:
        @strawberry.field(permission_classes=[Never])
        def guarded(self) -> int:
            return 1

        @strawberry.field
        def plain(self, x: int) -> int:
            return x

    tiny = strawberry.Schema(Query)._schema
    fields = tiny.query_type.fields  # type: ignore[union-attr]
    assert direct_caller(tiny, fields["guarded"]) is None
    assert direct_caller(tiny, fields["plain"]) is not None
