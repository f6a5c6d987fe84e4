"""One execution engine for /graphql and the REST shim.

Documents are parsed and validated once (with Strawberry's depth, alias and token
limits) and kept in an LRU; query operations whose selections read only plain fields
below their root fields are compiled into specialised serializers; everything else
runs on graphql-core. Automatic persisted queries (Apollo's protocol) share the cache.
"""

from schema.execution.documents import DocumentCache, PreparedDocument
from schema.execution.executor import execute_prepared

__all__ = ["DocumentCache", "PreparedDocument", "execute_prepared"]
