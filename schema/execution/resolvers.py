"""Root resolvers of compiled plans, called without Strawberry's per-call wrapper.

Strawberry wraps every resolver in a chain of closures that, on every call, builds the
`Info`, converts the arguments (working out each argument's GraphQL name again), folds in
the field's extensions and looks for exception handlers: about 50 Python calls around a
get-by-id, a tenth of all the calls the request makes (counted with cProfile). For a field
with no extensions (permission classes are extensions too) and no exception handler, the
chain reduces to what `direct_caller` does, with the names worked out once:

* each argument graphql-core coerced goes through Strawberry's own `convert_argument`,
  except arguments of a built-in scalar type, which that function returns unchanged;
* the source goes to `self` / `root` / `parent`, the `Info` to the info parameter, as
  Strawberry's `get_arguments` decides;
* the resolver function is called, and its result (awaitable or not) returned as is.

Fields that do not qualify keep graphql-core's resolver (`field.resolve`), wrapper and all.
tests/test_compiled_execution.py runs every stored query both ways and compares the
answers, the errors and the arguments the services receive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLField, GraphQLResolveInfo, GraphQLSchema
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryMaybe, StrawberryOptional

# (source, graphql-core's info, coerced arguments by GraphQL name) -> result or awaitable
RootCaller = Callable[[Any, GraphQLResolveInfo, dict[str, Any]], Any]


def generic_caller(field: GraphQLField) -> RootCaller:
    resolve = field.resolve
    assert resolve is not None  # Strawberry gives every field one

    def call(source: Any, info: GraphQLResolveInfo, args: dict[str, Any]) -> Any:
        return resolve(source, info, **args)

    return call


def _passes_unchanged(type_: Any, registry: Any) -> bool:
    """Whether `convert_argument` returns every value of this type unchanged."""
    if isinstance(type_, StrawberryMaybe):
        return False  # wrapped in Some()
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    return type_ is not GlobalID and is_scalar(type_, registry)


def direct_caller(schema: GraphQLSchema, field: GraphQLField) -> RootCaller | None:
    """A caller doing what Strawberry's wrapper does for this field, or None if it can't.

    It reads Strawberry's field, resolver and converter attributes; where one is missing (a
    release that changed them) the answer is None and Strawberry's own wrapper runs. Same
    names with other meanings would be caught by the tests that compare both paths."""
    try:
        return _direct_caller(schema, field)
    except (AttributeError, TypeError):
        return None


def _direct_caller(schema: GraphQLSchema, field: GraphQLField) -> RootCaller | None:
    strawberry_schema = getattr(schema, "_strawberry_schema", None)
    definition = (field.extensions or {}).get("strawberry-definition")
    if strawberry_schema is None or definition is None:
        return None
    resolver = definition.base_resolver
    if resolver is None or definition.extensions or definition.is_subscription:
        return None
    converter = strawberry_schema.schema_converter
    handlers_for = getattr(converter, "_get_field_exception_handlers", None)
    if handlers_for is None or handlers_for(definition):
        return None
    func = resolver.wrapped_func
    if not callable(func):
        return None
    config, registry = converter.config, converter.scalar_registry
    info_class = config.info_class

    unchanged: list[tuple[str, str]] = []  # (GraphQL name, Python name)
    converted: list[tuple[str, str, Any]] = []  # (GraphQL name, Python name, type)
    for argument in definition.arguments:
        name = config.name_converter.from_argument(argument)
        if _passes_unchanged(argument.type, registry):
            unchanged.append((name, argument.python_name))
        else:
            converted.append((name, argument.python_name, argument.type))
    pass_self = resolver.self_parameter is not None
    source_names = [p.name for p in (resolver.root_parameter, resolver.parent_parameter) if p]
    info_name = resolver.info_parameter.name if resolver.info_parameter else None

    def call(source: Any, info: GraphQLResolveInfo, args: dict[str, Any]) -> Any:
        strawberry_info = info_class(_raw_info=info, _field=definition)
        kwargs = {python: args[name] for name, python in unchanged if name in args}
        for name, python, type_ in converted:
            if name in args:
                kwargs[python] = convert_argument(
                    args[name], type_, registry, config, strawberry_info, path=(name,)
                )
        for name in source_names:
            kwargs[name] = source
        if info_name is not None:
            kwargs[info_name] = strawberry_info
        return func(source, **kwargs) if pass_self else func(**kwargs)

    return call
