"""GraphQL errors → `{"message", "path", "extensions": {"code"}}`, one code table for all."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

from pixelwand.errors import (
    DatabaseUnavailable,
    PixelWandError,
    StorageUnavailable,
    is_database_outage,
)

log = logging.getLogger("pixelwand.errors")


def domain_error(error: GraphQLError) -> PixelWandError:
    """The project error behind a GraphQL error; unexpected ones are logged as 500s."""
    original = error.original_error
    if isinstance(original, PixelWandError):
        return original
    if original is None or not error.path:
        # Parse/validation errors, variable coercion: the client's document or input.
        from pixelwand.errors import BadRequest

        return BadRequest(error.message)
    # The store first: aiohttp's connection errors are OSErrors too, and must not read as
    # a database outage.
    if _is_storage_outage(original):
        log.warning("storage unavailable: %r", original)
        return StorageUnavailable()
    if is_database_outage(original):
        log.warning("database unavailable: %s", original)
        return DatabaseUnavailable()
    log.error("internal error in %s", error.path, exc_info=original)
    return PixelWandError("internal error")


def _is_storage_outage(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in {"botocore", "aiobotocore", "aiohttp"}


def format_error(error: GraphQLError) -> dict[str, Any]:
    domain = domain_error(error)
    out: dict[str, Any] = {"message": domain.message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        out["path"] = error.path
    out["extensions"] = {"code": domain.code}
    return out
