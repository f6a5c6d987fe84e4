"""Compile a validated query's selection sets into plain Python serializers.

graphql-core resolves every field through the same generic machinery (~3-4 µs a field);
a 200-row page of 14 fields spends ~9 ms there. For documents known in advance (the REST
operations, persisted and repeated queries) the shape of the answer is fixed, so each
selection set is turned into one generated function that reads attributes and applies the
leaf types' own `serialize`. Only the root fields run their resolvers, through the same
resolver functions graphql-core would call, with the same coerced arguments.

Anything this does not handle exactly — directives, fields with resolvers below the root,
abstract types, introspection — makes `compile_operation` return None, and the operation
runs on graphql-core. At run time, a null where the schema says non-null or any exception
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


@dataclasses.dataclass(frozen=True)
class CompiledRootField:
    response_key: str
    field_name: str
    field_def: GraphQLField
    field_node: FieldNode
    serialize: Callable[[Any], Any]
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
        }
        self.lines: list[str] = []
        self.counter = 0

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
        self.lines.append(f"def {name}(value):\n    return {self.expr(type_, nodes, 'value')}\n")
        return name

    def expr(self, type_: Any, nodes: list[FieldNode], var: str) -> str:
        """An expression serializing the value in `var` as `type_`.

        Leaf values go through their type's own `serialize` (strings that already are
        strings skip the call: it would return them unchanged; enums look their name up
        first). A null in a non-null position raises Fallback, as does anything a
        serializer refuses (the caller turns every exception into a fallback).
        """
        nullable = not isinstance(type_, GraphQLNonNull)
        inner = type_ if nullable else type_.of_type
        if isinstance(inner, GraphQLList):
            item = self._name("x")
            value = f"[{self.expr(inner.of_type, nodes, item)} for {item} in {var}]"
            of = inner.of_type
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
            value = f"{self.object_fn(inner, merged)}({var})"
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
            if field is None or not _is_plain(field) or any(n.arguments for n in nodes):
                raise _NotCompilable(f"{type_.name}.{field_name} has a resolver")
            attr = _python_name(field, field_name)
            var = self._name("a")
            assigns.append(f"    {var} = obj.{attr}\n")
            items.append(f"{key!r}: {self.expr(field.type, nodes, var)}")
        body = "{" + ", ".join(items) + "}"
        self.lines.append(f"def {name}(obj):\n{''.join(assigns)}    return {body}\n")
        return name

    def build(self) -> dict[str, Any]:
        source = "\n".join(self.lines)
        exec(compile(source, "<compiled graphql>", "exec"), self.namespace)
        return self.namespace


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
            fn = gen.value_expr(field.type, nodes)
            roots.append((key, field_name, field, nodes[0], fn))
        namespace = gen.build()
    except _NotCompilable:
        return None
    fields = []
    for key, name, field, node, fn in roots:
        direct = direct_caller(schema, field)
        call = direct or generic_caller(field)
        fields.append(
            CompiledRootField(
                key,
                name,
                field,
                node,
                namespace[fn],
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
        coerce_variables=fast_coercer(schema, operation.variable_definitions or ()),
    )
