"""Collections: nested folders of assets, created idempotently by name."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError

from pixelwand.errors import BadRequest, Forbidden, NotFound
from pixelwand.ids import is_valid_id
from pixelwand.models import Collection
from pixelwand.services import organizations, webhooks
from pixelwand.services.records import COLLECTION_COLUMNS, CollectionRecord
from pixelwand.services.validation import check_text, require_color, require_name

MAX_COLLECTION_NAME = 200
# Every collection is listed in one answer (REST has no pages for them): bounded well
# under the GraphQL object limit (50,000), so a listing never becomes too large to answer.
MAX_COLLECTIONS = 10_000


def _record(row: tuple) -> CollectionRecord:
    return CollectionRecord(*row)


async def get_owned_collection_id(org_id: str, collection_id: str, field: str) -> str:
    """The id, once checked to name a collection of `org_id` (404 unknown, 403 other org)."""
    if not is_valid_id(collection_id):
        raise NotFound(f"{field} {collection_id} not found")
    owner = await Collection.filter(id=collection_id).values_list("organization_id", flat=True)
    if not owner:
        raise NotFound(f"{field} {collection_id} not found")
    if owner[0] != org_id:
        raise Forbidden(f"{field} {collection_id} belongs to another organization")
    return collection_id


async def list_collections(
    org_id: str,
    *,
    name: str | None = None,
    parent_id: str | None = None,
    top_level_only: bool = False,
) -> list[CollectionRecord]:
    qs = Collection.filter(organization_id=org_id)
    if name is not None:
        # A longer name matches nothing, but PostgreSQL would refuse to compare it with
        # the varchar(200) column (a 500 before this check).
        qs = qs.filter(name=check_text(name, "name", MAX_COLLECTION_NAME))
    if top_level_only:
        qs = qs.filter(parent_id=None)
    elif parent_id is not None:
        await get_owned_collection_id(org_id, parent_id, "parentId")
        qs = qs.filter(parent_id=parent_id)
    rows = await qs.order_by("name", "id").values_list(*COLLECTION_COLUMNS)
    return [_record(r) for r in rows]


async def create_collection(
    org_id: str, *, name: str | None, color: str | None = None, parent_id: str | None = None
) -> tuple[CollectionRecord, bool]:
    """(collection, created). An existing name answers the existing row, unchanged."""
    name = require_name(name, "name", max_length=MAX_COLLECTION_NAME)
    color = require_color(color)
    existing = await _by_name(org_id, name)
    if existing is not None:
        return existing, False
    if parent_id is not None:
        await get_owned_collection_id(org_id, parent_id, "parentId")
    try:
        async with organizations.locked(org_id):  # the count and the insert: one step
            if await Collection.filter(organization_id=org_id).count() >= MAX_COLLECTIONS:
                raise BadRequest(f"an organization may have at most {MAX_COLLECTIONS} collections")
            row = await Collection.create(
                organization_id=org_id, name=name, color=color, parent_id=parent_id
            )
            event = await webhooks.record(
                org_id, "collection.created", webhooks.collection_data(row)
            )
    except IntegrityError:
        # A concurrent create of the same name won: answer its row.
        existing = await _by_name(org_id, name)
        if existing is None:
            raise
        return existing, False
    if event:
        webhooks.wake_workers()
    return (
        CollectionRecord(row.id, org_id, row.name, row.parent_id, row.color, row.created_at),
        True,
    )


async def _by_name(org_id: str, name: str) -> CollectionRecord | None:
    rows = await Collection.filter(organization_id=org_id, name=name).values_list(
        *COLLECTION_COLUMNS
    )
    return _record(rows[0]) if rows else None


async def collections_by_ids(org_id: str, ids: list[str]) -> dict[str, CollectionRecord]:
    rows = await Collection.filter(organization_id=org_id, id__in=ids).values_list(
        *COLLECTION_COLUMNS
    )
    return {r[0]: _record(r) for r in rows}


async def children_by_parent_ids(
    org_id: str, parent_ids: list[str]
) -> dict[str, list[CollectionRecord]]:
    rows = (
        await Collection.filter(organization_id=org_id, parent_id__in=parent_ids)
        .order_by("name", "id")
        .values_list(*COLLECTION_COLUMNS)
    )
    out: dict[str, list[CollectionRecord]] = {}
    for r in rows:
        out.setdefault(r[3], []).append(_record(r))
    return out
