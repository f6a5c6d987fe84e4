"""Parsed and validated documents, cached; and automatic persisted queries.

Every document is parsed with Strawberry's token limit and validated with graphql-core's
rules plus Strawberry's depth and alias limiters — the same limits as `schema.execute`
applies — once, then kept in an LRU keyed by its text (ad-hoc queries repeat) and by its
SHA-256 (persisted queries send only the hash).

Both LRUs are bounded by bytes as well as by count: a document is refused past
`max_document_bytes` (UTF-8) before it is parsed, APQ registrations included, and each LRU
evicts its oldest entries while the estimated memory of what it holds is past `max_bytes`.
The estimate is measured, not exact: twice the text (the source and its slices in errors)
plus ~600 bytes per token (the token list, the AST, a compiled plan; 475-600 B measured
with tracemalloc on 31-731-token documents) plus 16 KiB.
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
    Token,
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
    weight: int = 0  # estimated bytes held (see _weight)
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


class DocumentTooLarge(Exception):
    """A document past the size limit (refused before it is parsed)."""


_BYTES_PER_TOKEN = 600
_ENTRY_OVERHEAD = 16 * 1024


def _weight(source: str, document: DocumentNode | None) -> int:
    tokens = 0
    if document is not None and document.loc is not None:
        token: Token | None = document.loc.start_token
        while token is not None:
            tokens += 1
            token = token.next
    return 2 * len(source) + _BYTES_PER_TOKEN * tokens + _ENTRY_OVERHEAD


class _Lru:
    """An LRU of prepared documents bounded by count and by estimated bytes."""

    def __init__(self, maxsize: int, max_bytes: int) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: collections.OrderedDict[str, tuple[PreparedDocument, int]] = (
            collections.OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> PreparedDocument | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        self._items.move_to_end(key)
        return hit[0]

    def put(self, key: str, prepared: PreparedDocument) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._items[key] = (prepared, prepared.weight)
        self.bytes += prepared.weight
        while self._items and (len(self._items) > self.maxsize or self.bytes > self.max_bytes):
            _, (_, weight) = self._items.popitem(last=False)
            self.bytes -= weight


class DocumentCache:
    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        validation_rules: tuple = (),
        max_tokens: int | None = None,
        maxsize: int = 1024,
        max_bytes: int = 32 * 1024 * 1024,
        max_document_bytes: int = 256 * 1024,
    ) -> None:
        self.schema = schema
        self.limits = tuple(validation_rules)
        self.max_tokens = max_tokens
        self.maxsize = maxsize
        self.max_document_bytes = max_document_bytes
        self._by_source = _Lru(maxsize, max_bytes)
        self._by_hash = _Lru(maxsize, max_bytes)
        self._lock = threading.Lock()

    def configure(self, *, max_bytes: int, max_document_bytes: int) -> None:
        """The limits from configuration (the cache is built at import, settings later)."""
        with self._lock:
            self.max_document_bytes = max_document_bytes
            for lru in (self._by_source, self._by_hash):
                lru.max_bytes = max_bytes

    @property
    def cached_bytes(self) -> int:
        """Estimated bytes held by both LRUs."""
        return self._by_source.bytes + self._by_hash.bytes

    def check_size(self, source: str) -> None:
        limit = self.max_document_bytes
        # Characters are 1-4 bytes: only a document near the limit is encoded to count.
        if len(source) > limit or (len(source) * 4 > limit and len(source.encode()) > limit):
            raise DocumentTooLarge(f"GraphQL document is larger than {limit} bytes")

    def prepare(self, source: str) -> PreparedDocument:
        with self._lock:
            hit = self._by_source.get(source)
            if hit is not None:
                return hit
        self.check_size(source)
        prepared = self._prepare(source)
        with self._lock:
            self._by_source.put(source, prepared)
        return prepared

    def _prepare(self, source: str) -> PreparedDocument:
        try:
            document = parse(source, max_tokens=self.max_tokens)
        except GraphQLError as error:
            return PreparedDocument(source, None, [error], _weight(source, None))
        # The limits only on a document that is valid GraphQL: Strawberry's depth rule looks
        # fragments up by name and raised KeyError on a spread of an undefined one (a 500
        # "internal error" for `{ assets { ...Nope } }`), which graphql-core's own rules
        # report as "Unknown fragment 'Nope'." (the same bug: graphene#1538).
        errors = validate(self.schema, document, specified_rules)
        if not errors:
            errors = validate(self.schema, document, self.limits)
        weight = _weight(source, document)
        return PreparedDocument(source, None if errors else document, list(errors), weight)

    def persisted(self, sha256_hash: str, source: str | None) -> PreparedDocument:
        """APQ: register `source` under its hash, or look the hash up when no source is sent."""
        if source is None:
            with self._lock:
                hit = self._by_hash.get(sha256_hash.lower())
                if hit is None:
                    raise PersistedQueryNotFound()
                return hit
        self.check_size(source)  # before hashing: a registration is a document like any other
        if hashlib.sha256(source.encode()).hexdigest() != sha256_hash.lower():
            raise PersistedQueryMismatch()
        prepared = self.prepare(source)
        if prepared.document is not None:
            with self._lock:
                self._by_hash.put(sha256_hash.lower(), prepared)
        return prepared
