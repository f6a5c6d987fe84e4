"""The committed schema.graphql is the schema's SDL, and the SDL documents itself."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType
from graphql.type import specified_scalar_types

from schema import schema

SDL_PATH = Path(__file__).resolve().parent.parent / "schema.graphql"
EXPORT_COMMAND = ".venv/bin/pixelwand export-schema -o schema.graphql"


def _public_types() -> dict:
    return {
        name: t
        for name, t in schema._schema.type_map.items()
        if not name.startswith("__") and name not in specified_scalar_types
    }


def test_committed_sdl_matches_the_schema() -> None:
    committed = SDL_PATH.read_text()
    exported = schema.as_str() + "\n"
    assert committed == exported, (
        f"schema.graphql is out of date with the Strawberry schema: run `{EXPORT_COMMAND}` "
        "and commit the result"
    )


def test_every_type_has_a_description() -> None:
    undocumented = sorted(name for name, t in _public_types().items() if not t.description)
    assert not undocumented, f"types without a description: {undocumented}"


def test_every_field_has_a_description() -> None:
    undocumented = sorted(
        f"{name}.{field_name}"
        for name, t in _public_types().items()
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType)
        for field_name, field in t.fields.items()
        if not field.description
    )
    assert not undocumented, f"fields without a description: {undocumented}"


def test_the_public_surface_is_there() -> None:
    types = _public_types()
    query = types["Query"].fields
    mutation = types["Mutation"].fields
    assert {"assets", "asset", "collections", "exportPresets", "viewer", "apiKeys"} <= set(query)
    assert {
        "presignUpload",
        "finalizeUpload",
        "updateAsset",
        "deleteAsset",
        "createCollection",
        "upsertExportPreset",
        "createApiKey",
        "revokeApiKey",
    } <= set(mutation)
