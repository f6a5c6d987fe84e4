"""PostgreSQL only: make way for the newest-first listing index of migration 0006.

This migration used to build `assets_live_newest_covering` (org, newest first, INCLUDE
media_type, name, original_name, tags) in place of 0003's `assets_live_newest`. A B-tree
entry must fit in 2,704 bytes, and an asset the contract allows (50 tags of 64 four-byte
characters) does not: such a row could not be written, and a database that already held
one could not pass this migration at all ("index row requires 15112 bytes"). Migration
0006 replaces the index with one whose entries are bounded, so this one now only drops
`assets_live_newest`; a database that ran the earlier version keeps its covering index
until 0006 drops it. SQLite (no INCLUDE) keeps its index from 0003.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

_FORWARD = """
DROP INDEX IF EXISTS assets_live_newest;
"""

_BACKWARD = """
CREATE INDEX IF NOT EXISTS assets_live_newest ON assets
    (organization_id, uploaded_at DESC, id DESC) WHERE deleted_at IS NULL;
DROP INDEX IF EXISTS assets_live_newest_covering;
"""


def _on_postgres(sql: str):
    async def run(apps, schema_editor) -> None:
        if schema_editor.client.capabilities.dialect == "postgres":
            await schema_editor.client.execute_script(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("models", "0004_asset_generations")]

    initial = False

    operations = [ops.RunPython(_on_postgres(_FORWARD), _on_postgres(_BACKWARD))]
