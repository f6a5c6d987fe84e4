"""Parsed and validated documents, cached; and automatic persisted queries.

Every document is parsed with Strawberry's token limit and validated with graphql-core's
rules plus Strawberry's depth and alias limiters — the same limits as `schema.execute`
applies — once, then kept in an LRU keyed by its text (ad-hoc queries repeat) and by its
SHA-256 (persisted queries send only the hash).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    parse,
    specified_rules,
    validate,
)

from schema.execution.compiler import CompiledOperation, compile_operation
from schema.execution.cost import CostPlan, plan_cost


@dataclasses.dataclass
class PreparedDocument:
    source: str
    document: DocumentNode | None
    errors: list[GraphQLError]
    # Compiled plans by operation name (None: the document's only operation).
    _plans: dict[str | None, CompiledOperation | None] = dataclasses.field(default_factory=dict)
    _types: dict[str | None, OperationType] = dataclasses.field(default_factory=dict)
    _costs: dict[str | None, CostPlan] = dataclasses.field(default_factory=dict)

    def operation_type(self, operation_name: str | None) -> OperationType | None:
        found = self._types.get(operation_name)
        if found is None:
            found = self._operation_type(operation_name)
            if found is not None:  # only names the document has: clients choose the names
                self._types[operation_name] = found
        return found

    def _operation_type(self, operation_name: str | None) -> OperationType | None:
        if self.document is None:
            return None
        ops = [d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            return ops[0].operation if len(ops) == 1 else None
        for op in ops:
            if op.name and op.name.value == operation_name:
                return op.operation
        return None

    def cost(self, schema: GraphQLSchema, operation_name: str | None) -> CostPlan | None:
        """The operation's cost plan (worked out once), or None when there is no such operation."""
        found = self._costs.get(operation_name)
        if found is None:
            operation = self._operation(operation_name)
            if operation is None:
                return None
            assert self.document is not None
            fragments = {
                d.name.value: d
                for d in self.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            found = self._costs[operation_name] = plan_cost(schema, operation, fragments)
        return found

    def _operation(self, operation_name: str | None) -> OperationDefinitionNode | None:
        if self.document is None:
            return None
        ops = [d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            return ops[0] if len(ops) == 1 else None
        for op in ops:
            if op.name and op.name.value == operation_name:
                return op
        return None

    def plan(self, schema: GraphQLSchema, operation_name: str | None) -> CompiledOperation | None:
        if operation_name not in self._plans:
            assert self.document is not None
            self._plans[operation_name] = compile_operation(schema, self.document, operation_name)
        return self._plans[operation_name]


class PersistedQueryNotFound(Exception):
    """A hash-only request for a document this process has not seen (APQ)."""


class PersistedQueryMismatch(Exception):
    """The sent query does not hash to the sent sha256Hash."""


class DocumentCache:
    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        validation_rules: tuple = (),
        max_tokens: int | None = None,
        maxsize: int = 1024,
    ) -> None:
        self.schema = schema
        self.limits = tuple(validation_rules)
        self.max_tokens = max_tokens
        self.maxsize = maxsize
        self._by_source: collections.OrderedDict[str, PreparedDocument] = collections.OrderedDict()
        self._by_hash: collections.OrderedDict[str, PreparedDocument] = collections.OrderedDict()
        self._lock = threading.Lock()

    def prepare(self, source: str) -> PreparedDocument:
        with self._lock:
            hit = self._by_source.get(source)
            if hit is not None:
                self._by_source.move_to_end(source)
                return hit
        prepared = self._prepare(source)
        with self._lock:
            self._by_source[source] = prepared
            if len(self._by_source) > self.maxsize:
                self._by_source.popitem(last=False)
        return prepared

    def _prepare(self, source: str) -> PreparedDocument:
        try:
            document = parse(source, max_tokens=self.max_tokens)
        except GraphQLError as error:
            return PreparedDocument(source, None, [error])
        # The limits only on a document that is valid GraphQL: Strawberry's depth rule looks
        # fragments up by name and raised KeyError on a spread of an undefined one (a 500
        # "internal error" for `{ assets { ...Nope } }`), which graphql-core's own rules
        # report as "Unknown fragment 'Nope'." (the same bug: graphene#1538).
        errors = validate(self.schema, document, specified_rules)
        if not errors:
            errors = validate(self.schema, document, self.limits)
        return PreparedDocument(source, None if errors else document, list(errors))

    def persisted(self, sha256_hash: str, source: str | None) -> PreparedDocument:
        """APQ: register `source` under its hash, or look the hash up when no source is sent."""
        if source is None:
            with self._lock:
                hit = self._by_hash.get(sha256_hash)
                if hit is None:
                    raise PersistedQueryNotFound()
                self._by_hash.move_to_end(sha256_hash)
                return hit
        if hashlib.sha256(source.encode()).hexdigest() != sha256_hash.lower():
            raise PersistedQueryMismatch()
        prepared = self.prepare(source)
        if prepared.document is not None:
            with self._lock:
                self._by_hash[sha256_hash.lower()] = prepared
                if len(self._by_hash) > self.maxsize:
                    self._by_hash.popitem(last=False)
        return prepared
