"""Per-request DataLoaders: one query per relation per request, however many rows."""

from __future__ import annotations

from functools import partial

from strawberry.dataloader import DataLoader

from pixelwand.services import assets, collections
from pixelwand.services.records import AssetRecord, CollectionRecord

# Collection.assets lists at most this many assets per collection; page with
# `assets(collectionId:)` beyond that.
ASSETS_PER_COLLECTION = 500


async def _collections(org_id: str, ids: list[str]) -> list[CollectionRecord | None]:
    found = await collections.collections_by_ids(org_id, ids)
    return [found.get(i) for i in ids]


async def _children(org_id: str, ids: list[str]) -> list[list[CollectionRecord]]:
    found = await collections.children_by_parent_ids(org_id, ids)
    return [found.get(i, []) for i in ids]


async def _collection_assets(org_id: str, ids: list[str]) -> list[list[AssetRecord]]:
    found = await assets.assets_by_collection_ids(org_id, ids, per_collection=ASSETS_PER_COLLECTION)
    return [found.get(i, []) for i in ids]


class Loaders:
    def __init__(self, org_id: str) -> None:
        self.collection = DataLoader(partial(_collections, org_id))
        self.children = DataLoader(partial(_children, org_id))
        self.collection_assets = DataLoader(partial(_collection_assets, org_id))
