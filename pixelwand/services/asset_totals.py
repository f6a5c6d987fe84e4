"""Exact listing totals without an exact COUNT on every request.

`total` in an asset page is an exact COUNT over the filter. On 100,000 assets a filtered
COUNT costs ~25 ms of PostgreSQL CPU, ten times the page itself, and repeats the same
answer until something is written. So totals are remembered per (organization, filter),
each under the organization's write generation: a counter that database triggers bump in
the same transaction as any change to its assets or tag rows (migration 0004), whichever
process or tool made it. Every page query reads the current generation in the same
statement as its rows, so a remembered total is used only when nothing has been written
since it was counted, and a process never needs to hear about another's writes.

Totals that come for free are never counted: a page shorter than `pageSize` ends the
result, so `total` is its offset plus its length (same statement, same snapshot).
"""

from __future__ import annotations

import collections

# (organization id, q, type, collectionId, tags[, contentHash list]) → (generation, total)
TotalKey = (
    tuple[str, str | None, str | None, str | None, tuple[str, ...]]
    | tuple[str, str | None, str | None, str | None, tuple[str, ...], tuple[str, ...]]
)

_MAX_ENTRIES = 8192


class AssetTotals:
    """A bounded LRU of totals, each valid for one generation of its organization."""

    def __init__(self, maxsize: int = _MAX_ENTRIES) -> None:
        self._maxsize = maxsize
        self._entries: collections.OrderedDict[TotalKey, tuple[int, int]] = (
            collections.OrderedDict()
        )

    def get(self, key: TotalKey, generation: int) -> int | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != generation:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: TotalKey, generation: int | None, total: int) -> None:
        if generation is None:
            return
        self._entries[key] = (generation, total)
        self._entries.move_to_end(key)
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)


totals = AssetTotals()
