"""Run a prepared document: the compiled plan when there is one, else graphql-core."""

from __future__ import annotations

import asyncio
from inspect import isawaitable
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLNonNull,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    OperationType,
    execute,
    located_error,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Path

from pixelwand.errors import RateLimited
from schema.execution.compiler import CompiledOperation, Fallback
from schema.execution.cost import (
    HEAVY_COST,
    BoundedExecutor,
    answer_too_large,
    heavy_queries,
    too_complex,
)
from schema.execution.documents import PreparedDocument


async def _gather(awaitables: Any) -> list[Any]:
    return list(await asyncio.gather(*awaitables))


def _track(values: Any) -> None:
    # Root resolvers here are awaited before the answer is built; nothing is left pending.
    return None


_HELPERS = GraphQLResolveInfoHelpers(gather=_gather, track=_track)


class OperationNotAllowed(Exception):
    """The operation's type is not allowed here (a mutation over GET)."""


async def execute_prepared(
    schema: GraphQLSchema,
    prepared: PreparedDocument,
    variables: dict[str, Any] | None,
    context: Any,
    operation_name: str | None = None,
    allowed: tuple[OperationType, ...] = (OperationType.QUERY, OperationType.MUTATION),
) -> ExecutionResult:
    if prepared.document is None:
        return ExecutionResult(None, prepared.errors)
    op_type = prepared.operation_type(operation_name)
    if op_type is not None and op_type not in allowed:
        raise OperationNotAllowed(op_type)
    max_cost = getattr(context, "max_cost", None)
    if max_cost is not None:
        cost_plan = prepared.cost(schema, operation_name)
        cost = cost_plan.cost(variables) if cost_plan is not None else 0
        if cost > max_cost:
            error = too_complex(cost, max_cost)
            return ExecutionResult(None, [GraphQLError(error.message, original_error=error)])
        key = getattr(getattr(context, "principal", None), "key_id", None)
        if key is not None and cost >= HEAVY_COST and cost_plan is not None:
            heavy = cost_plan.objects(variables) >= HEAVY_COST
        else:
            heavy = False
        if heavy and key is not None:
            try:
                async with heavy_queries.turn(key):
                    return await _execute(
                        schema, prepared, variables, context, operation_name, op_type
                    )
            except RateLimited as exc:
                return ExecutionResult(None, [GraphQLError(exc.message, original_error=exc)])
    return await _execute(schema, prepared, variables, context, operation_name, op_type)


async def _execute(
    schema: GraphQLSchema,
    prepared: PreparedDocument,
    variables: dict[str, Any] | None,
    context: Any,
    operation_name: str | None,
    op_type: OperationType | None,
) -> ExecutionResult:
    assert prepared.document is not None
    if op_type is OperationType.QUERY:
        plan = prepared.plan(schema, operation_name)
        if plan is not None:
            try:
                return await run_compiled(schema, plan, variables, context)
            except Fallback:
                pass
    result = execute(
        schema,
        prepared.document,
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
        executor_class=BoundedExecutor,
    )
    if isawaitable(result):
        result = await result
    return result


async def run_compiled(
    schema: GraphQLSchema, plan: CompiledOperation, variables: dict[str, Any] | None, context: Any
) -> ExecutionResult:
    inputs = variables or {}
    fast = plan.coerce_variables
    coerced = fast(inputs) if fast is not None else None
    if coerced is None:
        full = get_variable_values(schema, plan.operation.variable_definitions or (), inputs)
        if isinstance(full, list):  # variable errors: graphql-core words them
            raise Fallback("variables")
        coerced = full
    data: dict[str, Any] | None = {}
    errors = []
    for field in plan.fields:
        path = Path(None, field.response_key, plan.root_type.name)
        try:
            fast_args = field.arguments
            args = fast_args(coerced) if fast_args is not None else None
            if args is None:
                args = get_argument_values(field.field_def, field.field_node, coerced)
            info = GraphQLResolveInfo(
                field.field_name,
                [field.field_node],
                field.field_def.type,
                plan.root_type,
                path,
                schema,
                plan.fragments,
                None,
                plan.operation,
                coerced,
                context,
                isawaitable,  # type: ignore[arg-type]
                None,  # abort_signal
                _HELPERS,
            )
            result = field.call(None, info, args)
            if isawaitable(result):
                result = await result
            limit = getattr(context, "max_cost", None)
            if limit is not None and isinstance(result, list) and len(result) > limit:
                raise answer_too_large(limit)
        except Exception as exc:
            if len(plan.fields) != 1:
                raise Fallback("resolver error among several root fields") from exc
            errors.append(located_error(exc, [field.field_node], path.as_list()))
            nullable = not isinstance(field.field_def.type, GraphQLNonNull)
            return ExecutionResult({field.response_key: None} if nullable else None, errors)
        assert data is not None
        try:
            data[field.response_key] = field.serialize(result)
        except Exception as exc:  # a value the leaf type refuses: graphql-core words the error
            raise Fallback("serialization") from exc
    return ExecutionResult(data, None)
