"""GraphQL errors → `{"message", "path", "extensions": {"code"}}`, one code table for all."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from pixelwand.errors import BadRequest, PixelWandError, boundary_error


def domain_error(error: GraphQLError) -> PixelWandError:
    """The project error behind a GraphQL error; unexpected ones are logged as 500s."""
    original = error.original_error
    if isinstance(original, PixelWandError):
        return original
    if original is None or not error.path:
        # Parse/validation errors, variable coercion: the client's document or input.
        return BadRequest(error.message)
    # Storage backends raise StorageUnavailable themselves; a database fault or a bug is
    # translated (and logged) here, the GraphQL boundary.
    return boundary_error(original, "field " + ".".join(map(str, error.path)))


def format_error(error: GraphQLError) -> dict[str, Any]:
    domain = domain_error(error)
    out: dict[str, Any] = {"message": domain.message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        out["path"] = error.path
    out["extensions"] = {"code": domain.code}
    return out
