"""Variables and arguments for compiled plans: the common, already-valid case without
graphql-core.

graphql-core coerces each variable through a generic walk over its type (~15 Python calls
for one `ID!`). The REST routes and most clients send values that already are what
coercion returns: a str for String/ID, an int within 32 bits for Int, a bool, a finite
float, a list of str for `[String!]`, null for a nullable type. `fast_coercer` checks
exactly that, per variable, with the signatures worked out once, and builds the same
`VariableValues` graphql-core would. Any other value, a missing non-null variable or a
variable with a default makes it return None, and graphql-core coerces (and words the
errors) as before. tests/test_compiled_execution.py compares both on generated inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    FieldNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    VariableDefinitionNode,
    VariableNode,
    is_required_argument,
)
from graphql.execution.get_variable_signature import get_variable_signature
from graphql.execution.values import VariableValues, VariableValueSource

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _is_str(value: Any) -> bool:
    return value.__class__ is str


def _is_int(value: Any) -> bool:
    return value.__class__ is int and _INT_MIN <= value <= _INT_MAX


def _is_bool(value: Any) -> bool:
    return value.__class__ is bool


def _is_float(value: Any) -> bool:
    return value.__class__ is float and math.isfinite(value)


# graphql-core's own scalars (Strawberry uses them), whose coercion returns these values as is.
_SCALAR_CHECKS: dict[GraphQLScalarType, Callable[[Any], bool]] = {
    GraphQLString: _is_str,
    GraphQLID: _is_str,
    GraphQLInt: _is_int,
    GraphQLBoolean: _is_bool,
    GraphQLFloat: _is_float,
}

# value -> its coerced value, or _REFUSED
_REFUSED = object()
Coerce = Callable[[Any], Any]


def _coercer(type_: Any) -> Coerce | None:
    """What coercion returns for already-valid values of `type_`; None for other types."""
    nullable = not isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if not nullable else type_
    check = _SCALAR_CHECKS.get(inner) if isinstance(inner, GraphQLScalarType) else None
    if check is not None:

        def leaf(value: Any) -> Any:
            if value is None:
                return None if nullable else _REFUSED
            return value if check(value) else _REFUSED

        return leaf
    if isinstance(inner, GraphQLList):
        item = inner.of_type
        if not (
            isinstance(item, GraphQLNonNull)
            and (item.of_type is GraphQLString or item.of_type is GraphQLID)
        ):
            return None

        def strings(value: Any) -> Any:
            if value is None:
                return None if nullable else _REFUSED
            if value.__class__ is list and all(map(_is_str, value)):
                return list(value)  # coercion builds a new list
            return _REFUSED

        return strings
    return None


def fast_coercer(
    schema: GraphQLSchema, definitions: Sequence[VariableDefinitionNode]
) -> Callable[[dict[str, Any]], VariableValues | None] | None:
    """A coercer for the operation's variables, or None if no variable set can take it."""
    plans = []
    for node in definitions:
        signature = get_variable_signature(schema, node)
        if isinstance(signature, GraphQLError) or node.default_value is not None:
            return None
        coerce = _coercer(signature.type)
        if coerce is None:
            # Still worth a fast path when the variable is left out or null, as the REST
            # routes leave most filters: `type` (an enum) is usually null.
            nullable = not isinstance(signature.type, GraphQLNonNull)
            coerce = _null_only if nullable else _refuse
        plans.append((signature.name, signature, coerce))

    def coerce_all(inputs: dict[str, Any]) -> VariableValues | None:
        sources: dict[str, VariableValueSource] = {}
        coerced: dict[str, Any] = {}
        for name, signature, coerce in plans:
            if name not in inputs:
                if not isinstance(signature.type, GraphQLNonNull):
                    sources[name] = VariableValueSource(signature)
                    continue  # a nullable variable left out is omitted
                return None  # graphql-core words the error
            value = inputs[name]
            result = coerce(value)
            if result is _REFUSED:
                return None
            sources[name] = VariableValueSource(signature, value)
            coerced[name] = result
        return VariableValues(sources, coerced)

    return coerce_all


def fast_arguments(
    field: GraphQLField, node: FieldNode
) -> Callable[[VariableValues], dict[str, Any] | None] | None:
    """A root field's arguments from coerced variables, as `get_argument_values` gives them.

    Only for fields whose arguments are all variables; at run time it answers None (use
    graphql-core, which raises the error) for a missing required value, a null where the
    argument is non-null, or an argument left to its default."""
    by_name = {a.name.value: a for a in node.arguments or ()}
    plans = []
    for name, arg in field.args.items():
        arg_node = by_name.get(name)
        value_node = arg_node.value if arg_node is not None else None
        if value_node is not None and not isinstance(value_node, VariableNode):
            return None  # a literal
        variable = value_node.name.value if value_node is not None else None
        has_default = arg.default_value is not Undefined or arg.default is not None
        plans.append(
            (
                getattr(arg, "out_name", None) or name,
                variable,
                isinstance(arg.type, GraphQLNonNull),
                is_required_argument(arg),
                has_default,
            )
        )

    def arguments(variables: VariableValues) -> dict[str, Any] | None:
        coerced = variables.coerced
        out: dict[str, Any] = {}
        for out_name, variable, non_null, required, has_default in plans:
            if variable is not None and variable in coerced:
                value = coerced[variable]
                if value is None and non_null:
                    return None
                out[out_name] = value
            elif required or has_default:
                return None
        return out

    return arguments


def _null_only(value: Any) -> Any:
    return None if value is None else _REFUSED


def _refuse(value: Any) -> Any:
    return _REFUSED
