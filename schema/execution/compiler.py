"""Compile a validated query's selection sets into plain Python serializers.

graphql-core resolves every field through the same generic machinery (~3-4 µs a field);
a 200-row page of 14 fields spends ~9 ms there. For documents known in advance (the REST
operations, persisted and repeated queries) the shape of the answer is fixed, so each
selection set is turned into one generated function that reads attributes and applies the
leaf types' own `serialize`. Only the root fields run their resolvers, through the same
resolver functions graphql-core would call, with the same coerced arguments.

Below the root, only the relations in BATCHED_FIELDS may have resolvers (one level of them,
with plain fields under them): before serializing, the runner collects every parent of
such a field from the root's result, calls the field's resolver for each of them at once
(their DataLoader loads in one batch) and serializes what they return. Anything else this
does not handle exactly — directives, other fields with resolvers below the root, abstract
types, introspection — makes `compile_operation` return None, and the operation runs on
graphql-core. At run time, a null where the schema says non-null or any exception
raises `Fallback`, and the request is re-run on graphql-core, which produces the errors
(only queries are compiled, so re-running has no side effects).
"""

from __future__ import annotations

import dataclasses
import keyword
import math
from collections.abc import Callable
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from graphql.execution.values import VariableValues

from schema.execution.resolvers import RootCaller, direct_caller, generic_caller
from schema.execution.variables import fast_arguments, fast_coercer


class Fallback(Exception):
    """The compiled path cannot answer this exactly; run graphql-core instead."""


# Relations below the root that compiled plans resolve (batched through their DataLoader).
# `{ collections { assets { … } } }` is the heaviest answer the cost limit allows: through
# graphql-core its 5,000 assets took ~0.4 s of event-loop time, compiled ~1/15 of that.
BATCHED_FIELDS = frozenset({("Collection", "assets")})


@dataclasses.dataclass(frozen=True)
class BatchedField:
    """A resolver field below the root: where its parents are, and how to call it."""

    index: int  # its slot in the per-request results (`_r` in the generated code)
    # From the root value to the parents: (attribute, list depth) per step.
    path: tuple[tuple[str, int], ...]
    parent_type: GraphQLObjectType
    field_name: str
    field_def: GraphQLField
    field_node: FieldNode
    call: RootCaller
    counts_objects: bool  # a list of objects: its items count against the cost limit
    # Its value serialized, before the root's (the generated code reads it from `_r`), so
    # that the runner can pause between items: the whole value, and for a list of objects
    # one item (None otherwise). Set once the code is built.
    serialize: Callable[[Any, Any], Any] | None = None
    serialize_item: Callable[[Any, Any], Any] | None = None


@dataclasses.dataclass(frozen=True)
class CompiledRootField:
    response_key: str
    field_name: str
    field_def: GraphQLField
    field_node: FieldNode
    # (value, batched results) -> the serialized value; None for a list of objects, whose
    # items are serialized one at a time (`serialize_item`) so the runner can pause between.
    serialize: Callable[[Any, Any], Any] | None
    serialize_item: Callable[[Any, Any], Any] | None
    nullable: bool
    batched: tuple[BatchedField, ...]  # the batched fields below this one
    call: RootCaller  # the resolver: called directly where resolvers.py can, else wrapped
    direct: bool
    # Its arguments from coerced variables without graphql-core (None: no fast path).
    arguments: Callable[[VariableValues], dict[str, Any] | None] | None


@dataclasses.dataclass(frozen=True)
class CompiledOperation:
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    root_type: GraphQLObjectType
    fields: tuple[CompiledRootField, ...]
    batched_count: int  # batched fields below all root fields (slots of `_r`)
    # Variables that are already valid, coerced without graphql-core (None: no fast path).
    coerce_variables: Callable[[dict[str, Any]], VariableValues | None] | None


class _NotCompilable(Exception):
    pass


# Values the built-in serializers return unchanged: skip the call for them (exactness is
# checked against graphql-core by tests/test_compiled_execution.py).
_IDENTITY_WHEN = {
    "String": "{v}.__class__ is str",
    "ID": "{v}.__class__ is str",
    "Boolean": "{v}.__class__ is bool",
    "Int": "({v}.__class__ is int and -2147483648 <= {v} <= 2147483647)",
    "Float": "({v}.__class__ is float and _isfinite({v}))",
    "Long": "{v}.__class__ is int",
}


def _null() -> Any:
    raise Fallback("null in a non-null position")


def _counted(items: Any, r: list[Any]) -> Any:
    """A list of objects below the root (a page's items), added to the request's count of
    objects in lists, which the runner keeps last in `_r`."""
    r[-1][0] += len(items)
    return items


def _is_plain(field: GraphQLField) -> bool:
    """A field that reads an attribute of its parent (Strawberry's default resolver)."""
    return field.resolve is None or getattr(field.resolve, "_is_default", False)


class _Generator:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments
        self.namespace: dict[str, Any] = {
            "_null": _null,
            "_isfinite": math.isfinite,
            "_all": all,
            "_isstr": str.__instancecheck__,
            "_id": id,
            "_counted": _counted,
        }
        self.lines: list[str] = []
        self.counter = 0
        self.batched: list[BatchedField] = []
        # Batched field index → the names of its value and item serializers.
        self.batched_serializers: dict[int, tuple[str, str | None]] = {}
        # Where the value being generated sits: (attribute, list depth) steps from the root
        # value; None below a batched field (no second level of resolvers).
        self.path: list[tuple[str, int]] | None = []

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def _collect(
        self, type_: GraphQLObjectType, selection_set: SelectionSetNode
    ) -> dict[str, list[FieldNode]]:
        """Response key → field nodes, in document order (merging same-key fields)."""
        out: dict[str, list[FieldNode]] = {}

        def walk(selections: SelectionSetNode) -> None:
            for sel in selections.selections:
                if sel.directives:
                    raise _NotCompilable("directives")
                if isinstance(sel, FieldNode):
                    key = sel.alias.value if sel.alias else sel.name.value
                    out.setdefault(key, []).append(sel)
                elif isinstance(sel, InlineFragmentNode):
                    cond = sel.type_condition
                    if cond is not None and cond.name.value != type_.name:
                        raise _NotCompilable("type condition")
                    walk(sel.selection_set)
                elif isinstance(sel, FragmentSpreadNode):
                    frag = self.fragments[sel.name.value]
                    if frag.directives or frag.type_condition.name.value != type_.name:
                        raise _NotCompilable("fragment type condition")
                    walk(frag.selection_set)

        walk(selection_set)
        return out

    def value_expr(self, type_: Any, nodes: list[FieldNode]) -> str:
        """A function name that serializes a value of `type_` (handling null and lists)."""
        name = self._name("v")
        body = self.expr(type_, nodes, "value")
        self.lines.append(f"def {name}(value, _r):\n    return {body}\n")
        return name

    def expr(self, type_: Any, nodes: list[FieldNode], var: str, count: bool = False) -> str:
        """An expression serializing the value in `var` as `type_`; with `count`, a list of
        objects adds its length to the request's count (`_counted`).

        Leaf values go through their type's own `serialize` (strings that already are
        strings skip the call: it would return them unchanged; enums look their name up
        first). A null in a non-null position raises Fallback, as does anything a
        serializer refuses (the caller turns every exception into a fallback).
        """
        nullable = not isinstance(type_, GraphQLNonNull)
        inner = type_ if nullable else type_.of_type
        if isinstance(inner, GraphQLList):
            item = self._name("x")
            of = inner.of_type
            source = var
            if count and isinstance(_unwrapped(of)[0], GraphQLObjectType):
                source = f"_counted({var}, _r)"
            value = f"[{self.expr(of, nodes, item)} for {item} in {source}]"
            if (
                isinstance(of, GraphQLNonNull)
                and isinstance(of.of_type, GraphQLScalarType)
                and of.of_type.name in ("String", "ID")
            ):
                # A list of strings (tags) is its own serialization: checked in C, not
                # copied item by item (String/ID serialize return any str unchanged).
                value = (
                    f"({var} if {var}.__class__ is list and _all(map(_isstr, {var})) else {value})"
                )
        elif isinstance(inner, GraphQLEnumType):
            leaf, names = self._name("leaf"), self._name("names")
            self.namespace[leaf] = inner.serialize
            self.namespace[names] = {v.value: name for name, v in inner.values.items()}
            value = f"({names}[{var}] if {var} in {names} else {leaf}({var}))"
        elif isinstance(inner, GraphQLScalarType):
            leaf = self._name("leaf")
            self.namespace[leaf] = inner.serialize
            fast = _IDENTITY_WHEN.get(inner.name)
            value = (
                f"({var} if {fast.format(v=var)} else {leaf}({var}))" if fast else f"{leaf}({var})"
            )
        elif isinstance(inner, GraphQLObjectType):
            merged = SelectionSetNode(
                selections=tuple(
                    s for n in nodes if n.selection_set for s in n.selection_set.selections
                )
            )
            value = f"{self.object_fn(inner, merged)}({var}, _r)"
        else:
            raise _NotCompilable(f"type {inner}")
        if nullable:
            return f"(None if {var} is None else {value})"
        if isinstance(inner, GraphQLObjectType | GraphQLList):
            return f"({value} if {var} is not None else _null())"
        return value  # a leaf serializer refuses None by itself

    def object_fn(self, type_: GraphQLObjectType, selection_set: SelectionSetNode) -> str:
        fields = self._collect(type_, selection_set)
        name = self._name("obj")
        items: list[str] = []
        assigns: list[str] = []
        for key, nodes in fields.items():
            field_name = nodes[0].name.value
            if field_name == "__typename":
                items.append(f"{key!r}: {type_.name!r}")
                continue
            field = type_.fields.get(field_name)
            if field is None:
                raise _NotCompilable(f"{type_.name}.{field_name}")
            var = self._name("a")
            path = self.path
            plain = _is_plain(field) and not any(n.arguments for n in nodes)
            if plain:
                attr = _python_name(field, field_name)
                assigns.append(f"    {var} = obj.{attr}\n")
                self.path = None if path is None else [*path, (attr, _list_depth(field.type))]
            else:
                batched = self._batched(type_, field_name, field, nodes)
                assigns.append(f"    {var} = _r[{batched.index}][_id(obj)]\n")
                self.path = None  # plain fields only below a batched one
                # Serialized by the runner before the root (its objects were counted when
                # it was resolved): the code here takes the result as it is.
                item_name = None
                outer = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
                if batched.counts_objects and isinstance(outer, GraphQLList):
                    item_name = self.value_expr(outer.of_type, nodes)
                value_name = self.value_expr(field.type, nodes)
                self.batched_serializers[batched.index] = (value_name, item_name)
                items.append(f"{key!r}: {var}")
                self.path = path
                continue
            items.append(f"{key!r}: {self.expr(field.type, nodes, var, count=plain)}")
            self.path = path
        body = "{" + ", ".join(items) + "}"
        self.lines.append(f"def {name}(obj, _r):\n{''.join(assigns)}    return {body}\n")
        return name

    def _batched(
        self, type_: GraphQLObjectType, field_name: str, field: GraphQLField, nodes: list[FieldNode]
    ) -> BatchedField:
        if (type_.name, field_name) not in BATCHED_FIELDS or self.path is None:
            raise _NotCompilable(f"{type_.name}.{field_name} has a resolver")
        if any(n.arguments != nodes[0].arguments for n in nodes):
            raise _NotCompilable("merged fields with different arguments")
        inner, depth = _unwrapped(field.type)
        batched = BatchedField(
            index=len(self.batched),
            path=tuple(self.path),
            parent_type=type_,
            field_name=field_name,
            field_def=field,
            field_node=nodes[0],
            call=direct_caller(self.schema, field) or generic_caller(field),
            counts_objects=depth == 1 and isinstance(inner, GraphQLObjectType),
        )
        self.batched.append(batched)
        return batched

    def build(self) -> dict[str, Any]:
        source = "\n".join(self.lines)
        exec(compile(source, "<compiled graphql>", "exec"), self.namespace)
        return self.namespace


def _unwrapped(type_: Any) -> tuple[Any, int]:
    """The named type inside `type_`'s non-null and list wrappers, and how many lists."""
    depth = 0
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        depth += isinstance(type_, GraphQLList)
        type_ = type_.of_type
    return type_, depth


def _list_depth(type_: Any) -> int:
    return _unwrapped(type_)[1]


def _python_name(field: GraphQLField, field_name: str) -> str:
    """The attribute a plain field reads (Strawberry keeps its definition on the field)."""
    definition = (field.extensions or {}).get("strawberry-definition")
    name = definition.python_name if definition is not None else field_name
    if not name.isidentifier() or keyword.iskeyword(name):
        raise _NotCompilable(f"attribute {name!r}")
    return name


def compile_operation(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> CompiledOperation | None:
    """A compiled plan for a validated query document, or None when it must run on graphql-core."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        if len(operations) != 1:
            return None
        operation = operations[0]
    else:
        matches = [o for o in operations if o.name and o.name.value == operation_name]
        if len(matches) != 1:
            return None
        operation = matches[0]
    if operation.operation is not OperationType.QUERY or operation.directives:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root_type = schema.query_type
    if root_type is None:
        return None
    gen = _Generator(schema, fragments)
    try:
        collected = gen._collect(root_type, operation.selection_set)
        roots = []
        for key, nodes in collected.items():
            field_name = nodes[0].name.value
            if field_name.startswith("__") or len(nodes) != 1:
                return None
            field = root_type.fields[field_name]
            first = len(gen.batched)
            gen.path = [("", _list_depth(field.type))]
            outer = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            item_fn = None
            if isinstance(outer, GraphQLList) and isinstance(
                getattr(outer.of_type, "of_type", outer.of_type), GraphQLObjectType
            ):
                # A list of objects: its items one by one, so the runner can pause between.
                fn = None
                item_fn = gen.value_expr(outer.of_type, nodes)
            else:
                fn = gen.value_expr(field.type, nodes)
            batched = tuple(gen.batched[first:])
            roots.append((key, field_name, field, nodes[0], fn, item_fn, batched))
        namespace = gen.build()
    except _NotCompilable:
        return None
    serializers = {
        index: (namespace[value], namespace[item] if item is not None else None)
        for index, (value, item) in gen.batched_serializers.items()
    }

    def with_serializers(b: BatchedField) -> BatchedField:
        value, item = serializers[b.index]
        return dataclasses.replace(b, serialize=value, serialize_item=item)

    roots = [(*root[:6], tuple(map(with_serializers, root[6]))) for root in roots]
    fields = []
    for key, name, field, node, fn, item_fn, batched in roots:
        direct = direct_caller(schema, field)
        call = direct or generic_caller(field)
        fields.append(
            CompiledRootField(
                key,
                name,
                field,
                node,
                namespace[fn] if fn is not None else None,
                namespace[item_fn] if item_fn is not None else None,
                not isinstance(field.type, GraphQLNonNull),
                batched,
                call,
                bool(direct),
                fast_arguments(field, node),
            )
        )
    return CompiledOperation(
        operation=operation,
        fragments=fragments,
        root_type=root_type,
        fields=tuple(fields),
        batched_count=len(gen.batched),
        coerce_variables=fast_coercer(schema, operation.variable_definitions or ()),
    )
