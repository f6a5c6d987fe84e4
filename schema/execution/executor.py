"""Run a prepared document: the compiled plan when there is one, else graphql-core."""

from __future__ import annotations

import asyncio
import time
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
from pixelwand.priority import give_way, heavy
from schema.execution.compiler import BatchedField, CompiledOperation, CompiledRootField, Fallback
from schema.execution.cost import (
    HEAVY_COST,
    RENDER_COST,
    YIELD_SECONDS,
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
        objects = cost_plan.objects(variables) if cost_plan is not None else 0
        allowance = getattr(context, "allowance", None)
        if allowance is not None:
            listed = cost_plan.listed(variables) if cost_plan is not None else 0
            try:
                await allowance.charge(listed, (cost - objects) // RENDER_COST)
            except RateLimited as exc:
                return ExecutionResult(None, [GraphQLError(exc.message, original_error=exc)])
        key = getattr(getattr(context, "principal", None), "key_id", None)
        if key is not None and objects >= HEAVY_COST:
            # Heavy while it waits its turn too: waiting is not work others give way to
            # (pixelwand/priority.py).
            with heavy():
                try:
                    async with heavy_queries.turn(key):
                        result = await _execute(
                            schema, prepared, variables, context, operation_name, op_type
                        )
                except RateLimited as exc:
                    refusal = GraphQLError(exc.message, original_error=exc)
                    result = ExecutionResult(None, [refusal])
                if allowance is not None:
                    await allowance.settle(context.objects)
            return result
        result = await _execute(schema, prepared, variables, context, operation_name, op_type)
        if allowance is not None:
            await allowance.settle(context.objects)
        return result
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
    # What each batched field below the root returned, per parent (by identity); last, the
    # count of objects in lists below the root that serialization meets (a page's items).
    r: list[Any] = [{} for _ in range(plan.batched_count)]
    r.append([0])
    limit = getattr(context, "max_cost", None)
    objects = 0  # placed in lists of objects, counted against the limit as BoundedExecutor does
    for field in plan.fields:
        path = Path(None, field.response_key, plan.root_type.name)
        try:
            fast_args = field.arguments
            args = fast_args(coerced) if fast_args is not None else None
            if args is None:
                args = get_argument_values(field.field_def, field.field_node, coerced)
            info = _info(
                field.field_name,
                field.field_node,
                field.field_def,
                plan.root_type,
                path,
                schema,
                plan,
                coerced,
                context,
            )
            result = field.call(None, info, args)
            if isawaitable(result):
                result = await result
            if limit is not None and isinstance(result, list) and len(result) > limit:
                raise answer_too_large(limit)
        except Exception as exc:
            if len(plan.fields) != 1:
                raise Fallback("resolver error among several root fields") from exc
            errors.append(located_error(exc, [field.field_node], path.as_list()))
            nullable = not isinstance(field.field_def.type, GraphQLNonNull)
            return ExecutionResult({field.response_key: None} if nullable else None, errors)
        assert data is not None
        if field.serialize_item is not None and result is not None:
            objects += len(result)
        for batched in field.batched:
            objects += await _resolve_batched(schema, plan, batched, result, coerced, context, r)
            if limit is not None and objects > limit:
                # graphql-core words and places the error (it counts as BoundedExecutor).
                raise Fallback("answer over the cost limit")
        if field.batched:
            try:
                await _serialize_batched(field.batched, r)
            except Exception as exc:  # graphql-core words the error
                raise Fallback("serialization") from exc
        try:
            if field.serialize is not None:
                data[field.response_key] = field.serialize(result, r)
            else:
                data[field.response_key] = await _serialize_list(field, result, r)
        except Exception as exc:  # a value the leaf type refuses: graphql-core words the error
            raise Fallback("serialization") from exc
    if hasattr(context, "objects"):  # counted once the answer is built (not on a fallback)
        context.objects += objects + r[-1][0]
    return ExecutionResult(data, None)


async def _serialize_list(field: CompiledRootField, items: Any, r: list[Any]) -> Any:
    """A root list of objects, item by item, pausing for other requests whenever
    YIELD_SECONDS of work have passed (as BoundedExecutor does on graphql-core)."""
    if items is None:
        if field.nullable:
            return None
        raise Fallback("null in a non-null position")
    serialize = field.serialize_item
    assert serialize is not None
    out = []
    clock = time.perf_counter
    last = clock()
    for item in items:
        out.append(serialize(item, r))
        if clock() - last > YIELD_SECONDS:
            await give_way()
            last = clock()
    return out


async def _serialize_batched(fields: tuple[BatchedField, ...], r: list[Any]) -> None:
    """Replace each batched field's results in `r` by their serialized values, item by item
    for lists of objects, pausing for other requests whenever YIELD_SECONDS of work have
    passed (a collection's 500 assets were one step of the root's serialization)."""
    clock = time.perf_counter
    last = clock()
    for batched in fields:
        slot = r[batched.index]
        whole, item = batched.serialize, batched.serialize_item
        assert whole is not None
        for parent, value in slot.items():
            if item is not None and value.__class__ is list:
                out = []
                for x in value:
                    out.append(item(x, r))
                    if clock() - last > YIELD_SECONDS:
                        await give_way()
                        last = clock()
                slot[parent] = out
            else:
                slot[parent] = whole(value, r)
                if clock() - last > YIELD_SECONDS:
                    await give_way()
                    last = clock()


def _parents(value: Any, path: tuple[tuple[str, int], ...]) -> list[Any]:
    """The objects at the end of `path` (attribute, list depth) from the root's value."""
    values = [value]
    for attribute, depth in path:
        if attribute:
            values = [getattr(v, attribute) for v in values]
        for _ in range(depth):
            values = [item for v in values if v is not None for item in v]
        values = [v for v in values if v is not None]
    return list({id(v): v for v in values}.values())


async def _resolve_batched(
    schema: GraphQLSchema,
    plan: CompiledOperation,
    batched: BatchedField,
    root_value: Any,
    coerced: Any,
    context: Any,
    r: list[Any],
) -> int:
    """Call a batched field's resolver for every parent at once (their DataLoader loads
    run in one batch); keep the results in `r`; answer how many objects they hold."""
    parents = _parents(root_value, batched.path)
    if not parents:
        return 0
    args = get_argument_values(batched.field_def, batched.field_node, coerced)
    path = Path(None, batched.field_node.name.value, batched.parent_type.name)
    info = _info(
        batched.field_name,
        batched.field_node,
        batched.field_def,
        batched.parent_type,
        path,
        schema,
        plan,
        coerced,
        context,
    )
    call = batched.call
    try:
        results = await asyncio.gather(*(_awaited(call(p, info, args)) for p in parents))
    except Exception as exc:  # graphql-core answers it, with the error where it belongs
        raise Fallback("resolver error below the root") from exc
    slot = r[batched.index]
    objects = 0
    for parent, value in zip(parents, results, strict=True):
        slot[id(parent)] = value
        if batched.counts_objects and value is not None:
            objects += len(value)
    return objects


async def _awaited(value: Any) -> Any:
    return await value if isawaitable(value) else value


def _info(
    field_name: str,
    node: Any,
    field_def: Any,
    parent_type: Any,
    path: Path,
    schema: Any,
    plan: Any,
    coerced: Any,
    context: Any,
) -> GraphQLResolveInfo:
    """The resolve info graphql-core would build for this field (no root value)."""
    return GraphQLResolveInfo(
        field_name,
        [node],
        field_def.type,
        parent_type,
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
