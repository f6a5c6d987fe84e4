"""Per-request DataLoaders: one query per relation per request, however many rows."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from strawberry.dataloader import DataLoader

from pixelwand.services import assets, collections
from pixelwand.services.records import AssetRecord, CollectionRecord

# Collection.assets lists at most this many assets per collection; page with
# `assets(collectionId:)` beyond that.
ASSETS_PER_COLLECTION = 500
# Adds objects to what the request is charged (schema/context.py).
Charge = Callable[[int], None]


async def _collections(org_id: str, ids: list[str]) -> list[CollectionRecord | None]:
    found = await collections.collections_by_ids(org_id, ids)
    return [found.get(i) for i in ids]


async def _children(org_id: str, ids: list[str]) -> list[list[CollectionRecord]]:
    found = await collections.children_by_parent_ids(org_id, ids)
    return [found.get(i, []) for i in ids]


async def _collection_assets(
    org_id: str, first: int, max_objects: int | None, charge: Charge, ids: list[str]
) -> list[list[AssetRecord]]:
    found = await assets.assets_by_collection_ids(
        org_id, ids, per_collection=first, max_rows=max_objects
    )
    if found is None:  # more assets than the answer may hold: refused before reading them all
        from schema.execution.cost import answer_too_large  # cost.py imports this module

        limit = max_objects or 0
        charge(limit + 1)  # charged as the answer it would have been, not as a cheap refusal
        raise answer_too_large(limit)
    return [found.get(i, []) for i in ids]


def _no_charge(objects: int) -> None:
    pass


class Loaders:
    def __init__(
        self, org_id: str, max_objects: int | None = None, charge: Charge = _no_charge
    ) -> None:
        self.org_id = org_id
        self.max_objects = max_objects
        self.charge = charge
        self.collection = DataLoader(partial(_collections, org_id))
        self.children = DataLoader(partial(_children, org_id))
        self._collection_assets: dict[int, DataLoader[str, list[AssetRecord]]] = {}

    def collection_assets(self, first: int) -> DataLoader[str, list[AssetRecord]]:
        """The loader of Collection.assets(first:): it reads `first` per collection, so the
        rows it reads are the objects the answer holds, and it stops past the request's
        object limit (a cost estimate counts collections as 20; an organization may hold
        10,000, and 500 assets each were read before any limit was checked)."""
        loader = self._collection_assets.get(first)
        if loader is None:
            load = partial(_collection_assets, self.org_id, first, self.max_objects, self.charge)
            loader = self._collection_assets[first] = DataLoader(load)
        return loader
