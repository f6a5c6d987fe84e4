"""Migration 0011: locations stored before values were checked become readable again."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_db import _migrate as _migrate_newest

_MIGRATE_TO = """
import asyncio, sys
from tortoise import Tortoise
from tortoise.migrations.api import migrate
from pixelwand.db import ensure_sqlite_dir, tortoise_config

async def main():
    ensure_sqlite_dir(sys.argv[1])
    try:
        await migrate(config=tortoise_config(sys.argv[1]), target=sys.argv[2])
    finally:
        await Tortoise.close_connections()  # aiosqlite's thread would keep the process alive

asyncio.run(main())
"""


def _migrate(url: str, target: str | None = None) -> None:
    if target is None:
        _migrate_newest(url)
        return
    done = subprocess.run(
        [sys.executable, "-c", _MIGRATE_TO, url, target],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_upgrade_resets_non_finite_locations(dialect: str, tmp_path: Path) -> None:
    """Rows written before values were checked (locationX 1e400) are readable after
    migration 0011: their non-finite locations become 0, the others are kept."""
    from tests.conftest import POSTGRES_ADMIN_URL, fresh_database

    bad = ["Infinity", "-Infinity"] + (["NaN"] if dialect == "postgres" else [])
    insert_org = (
        "INSERT INTO organizations (id, name, plan, created_at)"
        " VALUES ('c000000000000000000000org', 'old', 'ENTERPRISE', '2026-01-01T00:00:00+00:00')"
    )

    def insert_asset(i: int, x: str, y: str) -> str:
        asset_id = f"c{i:024d}"
        return (
            "INSERT INTO assets (id, organization_id, name, original_name, size, mime_type,"
            " media_type, storage_key, tags, location_x, location_y, uploaded_at)"
            f" VALUES ('{asset_id}', 'c000000000000000000000org', 'a', 'a', 1, 'image/jpeg',"
            f" 'IMAGE', 'orgs/c000000000000000000000org/{i}.jpg', '[]', {x}, {y},"
            " '2026-01-01T00:00:00+00:00')"
        )

    def literal(value: str) -> str:
        if dialect == "postgres":
            return f"'{value}'::float8"
        return {"Infinity": "9e999", "-Infinity": "-9e999"}[value]

    rows = [(literal(v), "2.5") for v in bad] + [("1.5", literal(bad[0]))] + [("-3.25", "7")]
    expected = [(0.0, 2.5)] * len(bad) + [(1.5, 0.0), (-3.25, 7.0)]
    async with contextlib.AsyncExitStack() as stack:
        if dialect == "postgres":
            url = await stack.enter_async_context(fresh_database(POSTGRES_ADMIN_URL, "pw_finite"))
        else:
            url = f"sqlite://{tmp_path}/old.db"
        _migrate(url, "models.0006_postgres_listing_search_columns")
        statements = [insert_org] + [insert_asset(i, x, y) for i, (x, y) in enumerate(rows)]
        if dialect == "postgres":
            import asyncpg

            con = await asyncpg.connect(url)
            try:
                for statement in statements:
                    await con.execute(statement)
                _migrate(url)
                got = [
                    tuple(r)
                    for r in await con.fetch(
                        "SELECT location_x, location_y FROM assets ORDER BY id"
                    )
                ]
            finally:
                await con.close()
        else:
            path = f"{tmp_path}/old.db"
            with sqlite3.connect(path) as con:
                for statement in statements:
                    con.execute(statement)
            _migrate(url)
            with sqlite3.connect(path) as con:
                got = con.execute(
                    "SELECT location_x, location_y FROM assets ORDER BY id"
                ).fetchall()
    assert got == expected
