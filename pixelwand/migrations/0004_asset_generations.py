"""Per-organization write generations for assets, kept by the database itself.

Triggers on `assets` and `asset_tags` bump the organization's row in `asset_generations`
inside the writing transaction, whatever wrote (the API, the sweeper, a cascade, manual
SQL). A listing total cached under generation N (services/asset_totals.py) is therefore
exact while N is current. PostgreSQL runs one statement-level trigger per statement (a
COPY or a sweep of thousands of rows bumps once); SQLite has only row-level triggers.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

_UPSERT = (
    "INSERT INTO asset_generations (organization_id, generation) {rows} "
    "ON CONFLICT (organization_id) DO UPDATE SET generation = asset_generations.generation + 1"
)

_POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION pixelwand_bump_asset_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_UPSERT.format(rows="SELECT DISTINCT organization_id, 1 FROM new_rows ORDER BY 1")};
    ELSIF TG_OP = 'DELETE' THEN
        {_UPSERT.format(rows="SELECT DISTINCT organization_id, 1 FROM old_rows ORDER BY 1")};
    ELSE
        {_UPSERT.format(rows="SELECT organization_id, 1 FROM (SELECT organization_id FROM new_rows UNION SELECT organization_id FROM old_rows) AS changed ORDER BY 1")};
    END IF;
    RETURN NULL;
END
$$;
"""

_TABLES = ("assets", "asset_tags")
_TRANSITIONS = {
    "INSERT": "NEW TABLE AS new_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}


def _trigger(table: str, event: str) -> str:
    return f"{table}_generation_{event.lower()}"


def _postgres_forward() -> list[str]:
    sql = [_POSTGRES_FUNCTION]
    for table in _TABLES:
        for event, transition in _TRANSITIONS.items():
            name = _trigger(table, event)
            sql.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            sql.append(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transition} "
                "FOR EACH STATEMENT EXECUTE FUNCTION pixelwand_bump_asset_generation()"
            )
    return sql


def _sqlite_forward() -> list[str]:
    sql = []
    for table in _TABLES:
        for event in _TRANSITIONS:
            bumps = []
            if event in ("INSERT", "UPDATE"):
                bumps.append(_UPSERT.format(rows="VALUES (NEW.organization_id, 1)"))
            if event == "DELETE":
                bumps.append(_UPSERT.format(rows="VALUES (OLD.organization_id, 1)"))
            if event == "UPDATE":  # `WHERE` keeps SQLite from reading ON CONFLICT as a join
                bumps.append(
                    _UPSERT.format(
                        rows="SELECT OLD.organization_id, 1 WHERE OLD.organization_id IS NOT NEW.organization_id"
                    )
                )
            body = "".join(f"    {b};\n" for b in bumps)
            sql.append(
                f"CREATE TRIGGER IF NOT EXISTS {_trigger(table, event)} AFTER {event} ON {table}\n"
                f"BEGIN\n{body}END"
            )
    return sql


def _backward(dialect: str) -> list[str]:
    on = " ON {table}" if dialect == "postgres" else ""
    sql = [
        f"DROP TRIGGER IF EXISTS {_trigger(t, e)}{on.format(table=t)}"
        for t in _TABLES
        for e in _TRANSITIONS
    ]
    if dialect == "postgres":
        sql.append("DROP FUNCTION IF EXISTS pixelwand_bump_asset_generation()")
    return sql


async def _create_triggers(apps, schema_editor) -> None:
    client = schema_editor.client
    dialect = client.capabilities.dialect
    for statement in _postgres_forward() if dialect == "postgres" else _sqlite_forward():
        await client.execute_script(statement)
    # Organizations that already have assets start at generation 1.
    await client.execute_script(
        "INSERT INTO asset_generations (organization_id, generation) "
        "SELECT DISTINCT organization_id, 1 FROM assets WHERE true "
        "ON CONFLICT (organization_id) DO NOTHING"
    )


async def _drop_triggers(apps, schema_editor) -> None:
    client = schema_editor.client
    for statement in _backward(client.capabilities.dialect):
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("models", "0003_live_asset_indexes")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AssetGeneration",
            fields=[
                (
                    "organization_id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=25),
                ),
                ("generation", fields.BigIntField(default=0)),
            ],
            options={
                "table": "asset_generations",
                "app": "models",
                "pk_attr": "organization_id",
                "table_description": "Per-organization counter of writes to assets and asset tags.",
            },
            bases=["Model"],
        ),
        ops.RunPython(_create_triggers, _drop_triggers),
    ]
