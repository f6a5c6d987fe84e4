"""Run a stored operation in-process and turn its errors into the project's errors."""

from __future__ import annotations

import re
from typing import Any

from graphql import ExecutionResult, GraphQLError

from compat_rest.operations import StoredOperation
from pixelwand.errors import BadRequest, PixelWandError
from schema import schema
from schema.errors import domain_error
from schema.execution import execute_prepared

_VARIABLE = re.compile(
    r"^Variable '\$\w+' got invalid value .*? at '(?:\w+\.)?(?P<field>[\w.\[\]]+)'; (?P<why>.*)$",
    re.S,
)
_MISSING = re.compile(r"^Field '(?P<field>\w+)' of required type '.*?' was not provided\.$")
_SCALAR = re.compile(r"encountered error '(.*?)'; found")
_UNKNOWN = re.compile(r"^Field '(?P<field>\w+)' is not defined by type '.*?'\.$")


def _rest_message(error: GraphQLError) -> str:
    """graphql-core's coercion messages, rephrased around the JSON field they concern."""
    message = error.message
    m = _VARIABLE.match(message)
    if m:
        field, why = m.group("field"), m.group("why")
        inner = _MISSING.match(why)
        if inner:
            return f"{inner.group('field')} is required"
        inner = _UNKNOWN.match(why)
        if inner:
            return f"unknown field {inner.group('field')!r}"
        if "non-null" in why or ("null" in why.lower() and "Expected" in why):
            return f"{field} must not be null"
        return f"{field}: {why}"
    return message


def first_error(result: ExecutionResult) -> PixelWandError:
    assert result.errors
    error = result.errors[0]
    domain = domain_error(error)
    if isinstance(domain, BadRequest) and not isinstance(error.original_error, PixelWandError):
        return BadRequest(_rest_message(error))
    return domain


async def run(op: StoredOperation, variables: dict[str, Any], context: Any) -> Any:
    """The operation's root field value, or raise the first error as a PixelWandError."""
    result = await execute_prepared(schema._schema, op.prepared, variables, context)
    if result.errors:
        raise first_error(result)
    assert result.data is not None
    return result.data[op.root_field]
