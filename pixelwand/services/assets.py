"""Assets: listing, reading, updating and deleting rows (uploads live in uploads.py)."""

from __future__ import annotations

import dataclasses
import math
import re

from tortoise import connections
from tortoise.transactions import in_transaction

from pixelwand.db import batch_connection
from pixelwand.errors import BadRequest, Forbidden, NotFound
from pixelwand.ids import is_valid_id
from pixelwand.models import Asset, AssetTag
from pixelwand.priority import give_way
from pixelwand.services import webhooks
from pixelwand.services.asset_totals import TotalKey, totals
from pixelwand.services.collections import get_owned_collection_id
from pixelwand.services.listing_sql import Where, count_sql, page_sql
from pixelwand.services.records import ASSET_COLUMNS, AssetRecord, Page, utcnow_ms
from pixelwand.services.rows import decode_asset
from pixelwand.services.statements import Statement
from pixelwand.services.validation import (
    MAX_QUERY_LENGTH,
    check_finite,
    check_text,
    normalize_tags,
    require_name,
)

MAX_PAGE_SIZE = 200
MEDIA_TYPES = ("IMAGE", "VIDEO")


@dataclasses.dataclass(frozen=True)
class AssetFilter:
    q: str | None = None
    type: str | None = None
    collection_id: str | None = None
    tags: tuple[str, ...] = ()
    page: int = 1
    page_size: int = 50
    content_hashes: tuple[str, ...] = ()


MAX_CONTENT_HASHES = 200
_CONTENT_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def normalize_content_hashes(values: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """`contentHash` filter values: `sha256:<64 hex digits>` (hex in any case), distinct,
    at most MAX_CONTENT_HASHES of them. GraphQL lists are as long as the body allows, so
    the count is checked as the values are read (distinct ones kept in a dict: constant
    time a value, first order kept)."""
    if not values:
        return ()
    out: dict[str, None] = {}
    for raw in values:
        value = raw.strip().lower() if isinstance(raw, str) else ""
        if not _CONTENT_HASH.fullmatch(value):
            raise BadRequest("contentHash must be sha256:<64 hex digits> (comma-separated)")
        out[value] = None
        if len(out) > MAX_CONTENT_HASHES:
            raise BadRequest(f"contentHash takes at most {MAX_CONTENT_HASHES} values")
    return tuple(out)


def record(row: tuple) -> AssetRecord:
    return decode_asset(row)


# The hot, fixed-shape queries (see statements.py); the sentinels only shape the SQL.
_BY_ID = Statement(
    lambda asset_id: Asset.filter(id=asset_id, deleted_at=None).values_list(*ASSET_COLUMNS),
    "\0asset",
)


def _live(org_id: str):
    return Asset.filter(organization_id=org_id, deleted_at=None)


async def list_assets(org_id: str, f: AssetFilter) -> Page:
    if f.page < 1:
        raise BadRequest("page must be 1 or more")
    if not 1 <= f.page_size <= MAX_PAGE_SIZE:
        raise BadRequest(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
    if f.type is not None and f.type not in MEDIA_TYPES:
        raise BadRequest("type must be IMAGE or VIDEO")
    if f.q is not None:
        check_text(f.q, "q", MAX_QUERY_LENGTH)
    tags = tuple(normalize_tags(list(f.tags), filtering=True))
    hashes = normalize_content_hashes(f.content_hashes)
    if f.collection_id is not None:
        await get_owned_collection_id(org_id, f.collection_id, "collectionId")
    offset = (f.page - 1) * f.page_size
    where = Where(f.type, f.collection_id, f.q or None, tags, hashes)
    db = connections.get("default")
    dialect = db.capabilities.dialect
    _, rows = await db.execute_query(*page_sql(dialect, org_id, where, f.page_size, offset))
    items = [decode_asset(r) for r in rows]
    key: TotalKey = (org_id, f.q or None, f.type, f.collection_id, tags)
    if hashes:
        key = (*key, hashes)
    generation = rows[0][-1] if rows else None
    if 0 < len(rows) < f.page_size or (not rows and f.page == 1):
        total = offset + len(rows)  # the page ends the result: nothing to count
        totals.put(key, generation, total)
    else:
        remembered = totals.get(key, generation) if generation is not None else None
        if remembered is not None:
            total = remembered
        else:
            _, counted = await db.execute_query(*count_sql(dialect, org_id, where))
            total = int(counted[0][0])
            totals.put(key, counted[0][1], total)
    return Page(items=items, page=f.page, page_size=f.page_size, total=total)


async def get_asset(org_id: str, asset_id: str) -> AssetRecord:
    """A live asset of `org_id` (404 unknown or deleted, 403 another organization's)."""
    if not is_valid_id(asset_id):
        raise NotFound(f"asset {asset_id} not found")
    rows = await _BY_ID.rows(asset_id)
    if not rows:
        raise NotFound(f"asset {asset_id} not found")
    asset = decode_asset(rows[0])
    if asset.organization_id != org_id:
        raise Forbidden(f"asset {asset_id} belongs to another organization")
    return asset


async def assets_by_ids(org_id: str, ids: list[str]) -> dict[str, AssetRecord]:
    rows = await _live(org_id).filter(id__in=ids).values_list(*ASSET_COLUMNS)
    return {r[0]: record(r) for r in rows}


# A batch of Collection.assets: each collection's newest `per_collection` live assets.
#
# Each collection is cut by the database on the assets_live_collection_newest index
# (collection_id, uploaded_at DESC, id DESC, live rows): a LIMIT per collection, so a
# collection's older assets are never read. A few collections share a statement (UNION
# ALL), so that no statement returns much more than _ROWS_PER_STATEMENT rows: on SQLite
# every statement holds the process's one connection, and other requests' queries wait
# for it. Measured, 10 collections x 500 assets on SQLite: one ROW_NUMBER() window
# statement over the batch took 40-44 ms (the planner read the organization's index and
# sorted every row), five statements of two LIMITed collections ~3 ms each. SQLite needs
# `+organization_id` to pick the collection index rather than the organization's (4.3 ms
# against 1.2 ms for 500 rows). Rows are decoded by rows.decode_asset, not by Tortoise's
# per-field conversion (5,000 rows: ~136 ms in one step before).
_BATCH_COLUMNS = ", ".join(ASSET_COLUMNS)
_ROWS_PER_STATEMENT = 1_000
# SQLite refuses a compound SELECT of more than 500 terms: a small per-collection count
# (Collection.assets(first: 1)) must not put 1,000 collections in one statement.
_COLLECTIONS_PER_STATEMENT = 250
# Rows decoded between two pauses for other requests.
_DECODE_SLICE = 512


def _collection_assets_sql(
    dialect: str, org_id: str, collection_ids: list[str], per_collection: int
) -> tuple[str, list[object]]:
    """One statement: the newest `per_collection` live assets of each collection, ordered
    by collection, then as Collection.assets documents it (newest first)."""
    postgres = dialect == "postgres"
    mark = "$" if postgres else "?"
    org = "organization_id" if postgres else "+organization_id"
    values: list[object] = [org_id, per_collection]
    parts = []
    for n, collection_id in enumerate(collection_ids):
        values.append(collection_id)
        parts.append(
            f"SELECT * FROM (SELECT {_BATCH_COLUMNS} FROM assets"
            f" WHERE collection_id = {mark}{len(values)} AND deleted_at IS NULL"
            f" AND {org} = {mark}1 ORDER BY uploaded_at DESC, id DESC LIMIT {mark}2) AS c{n}"
        )
    sql = " UNION ALL ".join(parts) + " ORDER BY collection_id, uploaded_at DESC, id DESC"
    return sql, values


async def assets_by_collection_ids(
    org_id: str, collection_ids: list[str], *, per_collection: int, max_rows: int | None = None
) -> dict[str, list[AssetRecord]] | None:
    """Collection id → its newest `per_collection` live assets (newest first); None as soon
    as more than `max_rows` were read (the caller cannot answer that many: it stops there
    instead of reading every collection's assets first)."""
    out: dict[str, list[AssetRecord]] = {}
    if per_collection <= 0:
        return out
    db = batch_connection()  # on SQLite, not the connection every other request waits for
    dialect = db.capabilities.dialect
    ids = list(dict.fromkeys(collection_ids))
    group = max(1, min(_COLLECTIONS_PER_STATEMENT, _ROWS_PER_STATEMENT // per_collection))
    decoded = 0
    for start in range(0, len(ids), group):
        chunk = ids[start : start + group]
        _, rows = await db.execute_query(
            *_collection_assets_sql(dialect, org_id, chunk, per_collection)
        )
        if max_rows is not None and decoded + len(rows) > max_rows:
            return None
        for r in rows:
            decoded += 1
            if not decoded % _DECODE_SLICE:
                await give_way()  # a large batch decodes in slices: others run between
            asset = decode_asset(r)
            bucket = out.get(asset.collection_id)  # type: ignore[arg-type]
            if bucket is None:
                bucket = out[asset.collection_id] = []  # type: ignore[index]
            bucket.append(asset)
    return out


_UNSET = object()


async def update_asset(
    org_id: str,
    asset_id: str,
    *,
    name: str | object | None = _UNSET,
    tags: list[str] | object | None = _UNSET,
    collection_id: str | object | None = _UNSET,
    location_x: float | object | None = _UNSET,
    location_y: float | object | None = _UNSET,
    focal_point: dict[str, object] | object | None = _UNSET,
) -> AssetRecord:
    """Apply the given changes; `collection_id=None` moves the asset out of its collection,
    `focal_point=None` returns it to its automatic focal point."""
    changes: dict[str, object] = {}
    if focal_point is not _UNSET:
        x, y = parse_focal_point(focal_point)
        changes["focal_x"], changes["focal_y"] = x, y
    if name is not _UNSET:
        changes["name"] = require_name(name, "name")  # type: ignore[arg-type]
    new_tags: list[str] | None = None
    if tags is not _UNSET:
        if tags is None:
            raise BadRequest("tags must be a list (use [] to remove every tag)")
        new_tags = normalize_tags(tags)  # type: ignore[arg-type]
        changes["tags"] = new_tags
    for field, value in (("location_x", location_x), ("location_y", location_y)):
        if value is not _UNSET:
            changes[field] = check_finite(value, _camel(field))
    await get_asset(org_id, asset_id)
    if collection_id is not _UNSET:
        if collection_id is not None:
            await get_owned_collection_id(org_id, collection_id, "collectionId")  # type: ignore[arg-type]
        changes["collection_id"] = collection_id
    if changes:
        async with in_transaction():
            updated = await Asset.filter(id=asset_id, deleted_at=None).update(**changes)
            if not updated:
                raise NotFound(f"asset {asset_id} not found")
            if new_tags is not None:
                await replace_tag_rows(org_id, asset_id, new_tags)
            event = await webhooks.record(
                org_id, "asset.updated", lambda: webhooks.asset_snapshot(asset_id)
            )
        if event:
            webhooks.wake_workers()
    return await get_asset(org_id, asset_id)


async def replace_tag_rows(org_id: str, asset_id: str, tags: list[str]) -> None:
    await AssetTag.filter(asset_id=asset_id).delete()
    if tags:
        await AssetTag.bulk_create(
            [AssetTag(asset_id=asset_id, organization_id=org_id, tag=t) for t in tags]
        )


async def delete_asset(org_id: str, asset_id: str) -> str:
    """Hide the asset at once; the sweeper removes its stored objects later."""
    await get_asset(org_id, asset_id)
    async with in_transaction():
        updated = await Asset.filter(id=asset_id, deleted_at=None).update(deleted_at=utcnow_ms())
        if not updated:
            raise NotFound(f"asset {asset_id} not found")
        event = await webhooks.record(org_id, "asset.deleted", {"id": asset_id})
    if event:
        webhooks.wake_workers()
    return asset_id


def parse_focal_point(value: object) -> tuple[float | None, float | None]:
    """A manual focal point `{"x": 0-1, "y": 0-1}` → (x, y); None → (None, None)."""
    if value is None:
        return None, None
    message = 'focalPoint must be {"x": 0-1, "y": 0-1} or null'
    if not isinstance(value, dict) or set(value) != {"x", "y"}:
        raise BadRequest(message)
    out = []
    for axis in ("x", "y"):
        number = value[axis]
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise BadRequest(message)
        number = float(number) + 0.0  # -0.0 is 0: answered alike whatever the database
        if not math.isfinite(number) or not 0.0 <= number <= 1.0:
            raise BadRequest(f"focalPoint.{axis} must be a number between 0 and 1")
        out.append(number)
    return out[0], out[1]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


async def object_is_live(key: str) -> bool:
    """Whether a stored object (an original or a rendition) belongs to a live asset."""
    parts = key.split("/")
    if parts[0] == "renditions" and len(parts) >= 4:
        return await Asset.filter(id=parts[2], deleted_at=None).exists()
    return await Asset.filter(storage_key=key, deleted_at=None).exists()
