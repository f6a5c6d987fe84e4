"""The stored GraphQL operations behind the REST routes, parsed and validated once."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from functools import cache
from pathlib import Path

from graphql import DocumentNode, OperationType, parse
from graphql.language import FragmentDefinitionNode, OperationDefinitionNode

from schema import documents, schema
from schema.execution import PreparedDocument

_DIR = Path(__file__).parent
_SPREAD = re.compile(r"\.\.\.\s*([A-Za-z_]\w*)")
# A stored operation may name a stricter scope than its kind's in a first-line comment.
_SCOPE = re.compile(r"\A#\s*scope:\s*(read|write|admin)\b")


@dataclasses.dataclass(frozen=True)
class StoredOperation:
    name: str
    prepared: PreparedDocument
    kind: OperationType
    root_field: str
    declared_scope: str | None = None

    @property
    def document(self) -> DocumentNode:
        assert self.prepared.document is not None
        return self.prepared.document

    @property
    def scope(self) -> str:
        if self.declared_scope:
            return self.declared_scope
        return "read" if self.kind is OperationType.QUERY else "write"


def _fragments() -> dict[str, str]:
    source = (_DIR / "fragments.graphql").read_text()
    doc = parse(source)
    out = {}
    for d in doc.definitions:
        assert isinstance(d, FragmentDefinitionNode) and d.loc is not None
        out[d.name.value] = source[d.loc.start : d.loc.end]
    return out


def _load(name: str, fragments: dict[str, str]) -> StoredOperation:
    source = (_DIR / f"{name}.graphql").read_text()
    wanted = set(_SPREAD.findall(source))
    source += "\n" + "\n".join(fragments[f] for f in sorted(wanted))
    # Registered as a persisted query too: GraphQL clients may send its hash.
    prepared = documents.persisted(hashlib.sha256(source.encode()).hexdigest(), source)
    if prepared.document is None:
        raise RuntimeError(f"stored operation {name} is invalid: {prepared.errors[0].message}")
    op = next(d for d in prepared.document.definitions if isinstance(d, OperationDefinitionNode))
    root = op.selection_set.selections[0].name.value  # type: ignore[attr-defined]
    if op.operation is OperationType.QUERY and prepared.plan(schema._schema, None) is None:
        raise RuntimeError(f"stored operation {name} does not compile")
    declared = _SCOPE.match(source)
    return StoredOperation(
        name=name,
        prepared=prepared,
        kind=op.operation,
        root_field=root,
        declared_scope=declared.group(1) if declared else None,
    )


@cache
def stored_operations() -> dict[str, StoredOperation]:
    fragments = _fragments()
    names = sorted(p.stem for p in _DIR.glob("*.graphql") if p.stem != "fragments")
    return {name: _load(name, fragments) for name in names}
