"""PostgreSQL only: trigram indexes for `q` (case-insensitive substring search).

Tortoise renders `icontains` as `UPPER(CAST(col AS VARCHAR)) LIKE UPPER($1)`, so the
indexes are on exactly that expression. SQLite has no trigram index; there the org +
newest-first index bounds the scan instead. Creating the extension needs a role allowed
to (the database owner on PostgreSQL 13+ for trusted extensions such as pg_trgm).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

_FORWARD = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS assets_name_trgm
    ON assets USING gin ((UPPER(CAST(name AS VARCHAR))) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS assets_original_name_trgm
    ON assets USING gin ((UPPER(CAST(original_name AS VARCHAR))) gin_trgm_ops);
"""

_BACKWARD = """
DROP INDEX IF EXISTS assets_name_trgm;
DROP INDEX IF EXISTS assets_original_name_trgm;
"""


def _on_postgres(sql: str):
    async def run(apps, schema_editor) -> None:
        if schema_editor.client.capabilities.dialect == "postgres":
            await schema_editor.client.execute_script(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    initial = False

    operations = [ops.RunPython(_on_postgres(_FORWARD), _on_postgres(_BACKWARD))]
