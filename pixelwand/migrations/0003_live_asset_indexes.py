"""Partial indexes over live assets, in the order listings read them.

`WHERE deleted_at IS NULL ORDER BY uploaded_at DESC, id DESC` cannot walk an index on
(organization_id, deleted_at, uploaded_at, id) in order (PostgreSQL does not treat IS NULL
as an equality for ordering), so a 100,000-asset organization's first page was a sequential
scan and a sort (54 ms); with these it reads 50 index entries (0.2 ms). SQLite and
PostgreSQL both support partial and descending indexes, so the SQL is shared. The covering
tag index lets the tag filter's subquery run as an index-only scan.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

_FORWARD = [
    "CREATE INDEX IF NOT EXISTS assets_live_newest ON assets"
    " (organization_id, uploaded_at DESC, id DESC) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS assets_live_type_newest ON assets"
    " (organization_id, media_type, uploaded_at DESC, id DESC) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS assets_live_collection_newest ON assets"
    " (collection_id, uploaded_at DESC, id DESC) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS asset_tags_org_tag_asset ON asset_tags"
    " (organization_id, tag, asset_id)",
]

_BACKWARD = [
    "DROP INDEX IF EXISTS assets_live_newest",
    "DROP INDEX IF EXISTS assets_live_type_newest",
    "DROP INDEX IF EXISTS assets_live_collection_newest",
    "DROP INDEX IF EXISTS asset_tags_org_tag_asset",
]


class Migration(migrations.Migration):
    dependencies = [("models", "0002_postgres_search_indexes")]

    initial = False

    operations = [ops.RunSQL(_FORWARD, _BACKWARD)]
