"""PostgreSQL only: the newest-first listing index covers what filters test.

A filtered page (`q`, `tags`, `type`) walks live assets newest first and tests each one
until the page is full: ~2,000 rows for a 50-row page matching 2% of 100,000 assets. With
`media_type`, `name`, `original_name` and `tags` included in the index, those tests run on
index entries (an index-only scan, no heap visit per rejected row) and only the page's own
rows are read from the table (services/listing_sql.py, the deferred join). It replaces
`assets_live_newest` (same key, same predicate) rather than adding a second index to
maintain on every write. SQLite (no INCLUDE) keeps its index from 0003.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

_FORWARD = """
CREATE INDEX IF NOT EXISTS assets_live_newest_covering ON assets
    (organization_id, uploaded_at DESC, id DESC)
    INCLUDE (media_type, name, original_name, tags)
    WHERE deleted_at IS NULL;
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
