"""GraphQL cost: how many objects an answer may hold, plus renders, known before execution.

Depth and alias limits do not bound work: `assets { items { collection { assets { … } } } }`
four levels deep over 50 assets is 6.25 M objects. The cost of a request is the number of
objects its answer may hold — every object-typed field counts one per instance, multiplied by
the sizes of the lists above it — plus `RENDER_COST` per field that renders an image. List
sizes come from the request where it says them (`assets(pageSize:)`, `Collection.assets
(first:)`, from literals or variables), from the schema's caps otherwise (`Collection.assets`:
500), and for lists without either from typical sizes (below). Leaves are free; introspection
is bounded by the schema and costs one.

The static part (the tree of counts and weights) is worked out once per document and
operation; a request only evaluates the counts that depend on its variables. Because typical
sizes are estimates, execution also counts the objects really placed in lists and stops at
the same limit (`BoundedExecutor`), and yields to the event loop while it completes long
lists, so that one large answer does not hold up every other request of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.execution.executor import Executor

from pixelwand.errors import QueryTooComplex, RateLimited
from pixelwand.priority import give_way
from schema.dataloaders import ASSETS_PER_COLLECTION

# One render weighs as much as this many objects: at most limit / RENDER_COST renders a request.
RENDER_COST = 4_000
RENDER_FIELDS = frozenset({("Query", "exportUrl"), ("Asset", "rendition")})

# Lists sized by an argument: (type, field) → (argument, default, largest value accepted).
PAGED_LISTS: dict[tuple[str, str], tuple[str, int, int]] = {
    ("Collection", "assets"): ("first", ASSETS_PER_COLLECTION, ASSETS_PER_COLLECTION),
}
# Fields returning a page whose `items` the argument sizes.
PAGES: dict[tuple[str, str], tuple[str, int, int]] = {
    ("Query", "assets"): ("pageSize", 50, 200),
}
# Lists without a size argument: typical sizes. `children` counts one per parent: every
# collection has one parent, so a level of children holds no more collections in all than
# the level above (duplicates aside, which the run-time count catches).
TYPICAL_LISTS: dict[tuple[str, str], int] = {
    ("Query", "collections"): 20,
    ("Collection", "children"): 1,
}
TYPICAL_LIST = 20

# Lists longer than this are completed item by item, pausing for other requests whenever
# YIELD_SECONDS of work have passed (so a large answer delays others by about that much).
YIELD_AFTER_ITEMS = 16
YIELD_SECONDS = 0.001
# Queries costing at least this take a per-key turn (HeavyQueries).
HEAVY_COST = 1_000


@dataclasses.dataclass(frozen=True, slots=True)
class _Count:
    """How many instances per parent: a constant, or an argument clamped to [0, cap]."""

    constant: int
    variable: str | None = None
    cap: int = 0

    def value(self, variables: Mapping[str, Any]) -> int:
        if self.variable is None:
            return self.constant
        given = variables.get(self.variable)
        if given is None:
            return self.constant
        if given.__class__ is not int:
            return self.cap  # coercion will refuse it; cost the worst case meanwhile
        return max(0, min(given, self.cap))


@dataclasses.dataclass(frozen=True, slots=True)
class _Node:
    weight: int  # the node's own cost per instance: 1 an object, + RENDER_COST a render
    count: _Count
    children: tuple[_Node, ...]
    objects: int = 1  # objects per instance (renders excluded)
    listed: bool = False  # an object in a list (what execution counts, and the allowance)


_ONE = _Count(1)


class CostPlan:
    """The cost of one operation of a document, given its variables."""

    def __init__(self, nodes: tuple[_Node, ...]) -> None:
        self._nodes = nodes
        self._static = None if _uses_variables(nodes) else _total(nodes, {})

    def cost(self, variables: Mapping[str, Any] | None) -> int:
        if self._static is not None:
            return self._static
        return _total(self._nodes, variables or {})

    def objects(self, variables: Mapping[str, Any] | None) -> int:
        """The cost without renders: what building the answer takes on the event loop
        (renders run on the image pool, under the render memory budget)."""
        return _objects(self._nodes, variables or {})

    def listed(self, variables: Mapping[str, Any] | None) -> int:
        """The objects in lists (not those one per parent, such as a page or an asset's
        collection): what execution counts, and what the request spends of its key's
        allowance (pixelwand/ratelimit/allowance.py)."""
        return _listed(self._nodes, variables or {})


def _uses_variables(nodes: tuple[_Node, ...]) -> bool:
    return any(n.count.variable is not None or _uses_variables(n.children) for n in nodes)


def _total(nodes: tuple[_Node, ...], variables: Mapping[str, Any]) -> int:
    return sum(n.count.value(variables) * (n.weight + _total(n.children, variables)) for n in nodes)


def _objects(nodes: tuple[_Node, ...], variables: Mapping[str, Any]) -> int:
    return sum(
        n.count.value(variables) * (n.objects + _objects(n.children, variables)) for n in nodes
    )


def _listed(nodes: tuple[_Node, ...], variables: Mapping[str, Any]) -> int:
    return sum(
        n.count.value(variables) * (n.listed + _listed(n.children, variables)) for n in nodes
    )


def plan_cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: dict[str, Any]
) -> CostPlan:
    root = schema.get_root_type(operation.operation)
    if root is None:
        return CostPlan(())
    return CostPlan(_Planner(schema, fragments).selection(root, [operation.selection_set], None))


class _Planner:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments

    def _collect(
        self, type_: GraphQLObjectType, sets: Iterable[SelectionSetNode]
    ) -> dict[str, list[FieldNode]]:
        """Response key → field nodes (directives ignored: @skip costs as if included)."""
        out: dict[str, list[FieldNode]] = {}
        seen: set[str] = set()

        def walk(selections: SelectionSetNode) -> None:
            for sel in selections.selections:
                if isinstance(sel, FieldNode):
                    key = sel.alias.value if sel.alias else sel.name.value
                    out.setdefault(key, []).append(sel)
                elif isinstance(sel, InlineFragmentNode):
                    walk(sel.selection_set)
                elif isinstance(sel, FragmentSpreadNode):
                    name = sel.name.value
                    if name not in seen and name in self.fragments:  # validated: no cycles
                        seen.add(name)
                        walk(self.fragments[name].selection_set)

        for s in sets:
            walk(s)
        return out

    def selection(
        self,
        type_: GraphQLObjectType,
        sets: list[SelectionSetNode],
        page_count: _Count | None,
    ) -> tuple[_Node, ...]:
        nodes = []
        for fields in self._collect(type_, sets).values():
            name = fields[0].name.value
            if name == "__typename":
                continue
            if name.startswith("__"):  # __schema, __type: bounded by the schema itself
                nodes.append(_Node(1, _ONE, ()))
                continue
            field = type_.fields.get(name)
            if field is None:
                continue
            inner, is_list = _unwrap(field.type)
            where = (type_.name, name)
            weight = RENDER_COST if where in RENDER_FIELDS else 0
            if not isinstance(inner, GraphQLObjectType):
                if weight:
                    nodes.append(_Node(weight, _ONE, (), 0))
                continue
            count = _ONE
            if is_list:
                if where == ("AssetPage", "items") and page_count is not None:
                    count = page_count
                elif where in PAGED_LISTS:
                    count = _argument(fields[0], *PAGED_LISTS[where])
                else:
                    count = _Count(TYPICAL_LISTS.get(where, TYPICAL_LIST))
            inner_page = _argument(fields[0], *PAGES[where]) if where in PAGES else None
            children = self.selection(
                inner, [f.selection_set for f in fields if f.selection_set], inner_page
            )
            nodes.append(_Node(weight + 1, count, children, listed=is_list))
        return tuple(nodes)


def _unwrap(type_: Any) -> tuple[Any, bool]:
    is_list = False
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(type_, GraphQLList)
        type_ = type_.of_type
    return type_, is_list


def _argument(node: FieldNode, name: str, default: int, cap: int) -> _Count:
    for arg in node.arguments or ():
        if arg.name.value != name:
            continue
        value = arg.value
        if isinstance(value, IntValueNode):
            return _Count(max(0, min(int(value.value), cap)))
        if isinstance(value, VariableNode):
            return _Count(default, value.name.value, cap)
        return _Count(cap)
    return _Count(default)


def too_complex(cost: int, limit: int) -> QueryTooComplex:
    return QueryTooComplex(
        f"query cost {cost} is over the limit of {limit}: ask for smaller pages, fewer "
        "nested lists or fewer renders (Collection.assets takes first:)"
    )


def answer_too_large(limit: int) -> QueryTooComplex:
    return QueryTooComplex(
        f"the answer holds more than {limit} objects: ask for smaller pages or fewer nested lists"
    )


# --- during execution -------------------------------------------------------------------


async def _chunked(items: list[Any]) -> AsyncIterator[Any]:
    """The items, pausing for other tasks whenever YIELD_SECONDS of work have passed (the
    consumer completes each item, nested lists included, between two items)."""
    clock = time.perf_counter
    last = clock()
    for item in items:
        if clock() - last > YIELD_SECONDS:
            await give_way()
            last = clock()
        yield item


class HeavyQueries:
    """At most `running` queries costing HEAVY_COST or more run at once per API key, and at
    most `waiting` more wait for their turn; past that, 429. With the cost limit this bounds
    what one key can take of a process, whatever its plan's rate."""

    def __init__(self, running: int = 1, waiting: int = 2) -> None:
        self.running = running
        self.waiting = waiting
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = (asyncio.Semaphore(self.running), [0])
        semaphore, holders = slot
        if holders[0] >= self.running + self.waiting:
            raise RateLimited(
                "too many expensive queries at once for this API key; retry shortly", 1.0
            )
        holders[0] += 1
        try:
            async with semaphore:
                yield
        finally:
            holders[0] -= 1
            if holders[0] == 0:
                del self._slots[key]


heavy_queries = HeavyQueries()


class BoundedExecutor(Executor):
    """graphql-core's executor, counting the objects it places in lists against the limit
    (`context.max_cost`), and completing long lists in chunks between which other
    requests run."""

    _objects = 0

    def complete_iterable_value(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        items: Iterable[Any],
        position_context: Any,
    ) -> Any:
        if isinstance(items, list) and isinstance(_unwrap(item_type)[0], GraphQLObjectType):
            self._objects += len(items)
            if hasattr(self.context_value, "objects"):  # what the request is charged
                self.context_value.objects += len(items)
            limit = getattr(self.context_value, "max_cost", None)
            if limit is not None and self._objects > limit:
                raise answer_too_large(limit)
            if len(items) > YIELD_AFTER_ITEMS:
                return self.complete_async_iterator_value(
                    item_type, field_details_list, info, path, _chunked(items), position_context
                )
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )
