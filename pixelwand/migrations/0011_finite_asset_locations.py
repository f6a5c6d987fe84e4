"""Asset locations that no read can serve are reset to 0.

Before values were checked at write time, `updateAsset(locationX: 1e400)` stored infinity
(PostgreSQL also takes NaN), after which every read of that asset, and every listing page
holding it, answered 500: GraphQL's Float cannot represent a non-finite value. Writes now
refuse them (400); this repairs rows written before. SQLite stores NaN as NULL, which the
NOT NULL column refuses, so only infinities can be there; the test covers NULL as well.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

_MAX = "1.7976931348623157e308"


async def _reset_non_finite(apps, schema_editor) -> None:
    client = schema_editor.client
    for column in ("location_x", "location_y"):
        if client.capabilities.dialect == "postgres":
            # float8 has 'NaN', 'Infinity' and '-Infinity'; NaN equals NaN in PostgreSQL.
            condition = f"{column} IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)"
        else:
            condition = f"{column} IS NULL OR abs({column}) > {_MAX}"
        await client.execute_script(f"UPDATE assets SET {column} = 0 WHERE {condition}")


async def _nothing(apps, schema_editor) -> None:
    return None


class Migration(migrations.Migration):
    dependencies = [("models", "0010_rendition_facts")]

    initial = False

    operations = [ops.RunPython(_reset_non_finite, _nothing)]
