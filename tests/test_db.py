"""The database layer's own promises on PostgreSQL: the tag signature, pooled sessions, upgrades."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from tortoise import connections

from pixelwand.services.listing_sql import Where, page_sql, tag_bits

pytestmark = pytest.mark.backends("postgres-s3")


def _random_tag(rng: random.Random) -> str:
    alphabet = [*"abcXYZ019 -_%\\\"'[]{},", "é", "ß", "İ", "ﬁ", "日本", "🙂", "\u0301", "\x01"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 64)))


async def test_python_tag_signature_is_the_stored_one(app):
    """listing_sql.tag_bits (the query's mask) must set the same bits as the generated
    `tag_bits` column (migration 0006's SQL function), or tag filters lose rows."""
    rng = random.Random(11)
    lists = [[_random_tag(rng) for _ in range(rng.randint(0, 50))] for _ in range(300)]
    db = connections.get("default")
    for tags in lists:
        _, rows = await db.execute_query(
            "SELECT pixelwand_tag_bits($1::jsonb)", [orjson.dumps(tags).decode()]
        )
        assert rows[0][0] == tag_bits(tuple(tags)), tags
    assert {bin(tag_bits((t,))).count("1") for tags in lists for t in tags} == {1, 2}
    assert max(tag_bits(tuple(tags)) for tags in lists) < 2**62


async def test_a_connection_left_in_a_transaction_is_rolled_back_on_release(app):
    """The pool's release skips asyncpg's session reset (db._release_connection), but a
    connection returned mid-transaction must still come back clean."""
    client = connections.get("default")
    pool = client._pool
    async with pool.acquire() as con:
        await con.execute("BEGIN")
        await con.execute("CREATE TEMP TABLE left_open (x int)")
        assert con.is_in_transaction()
        pid = con.get_server_pid()
    # The same connection comes back clean. Connections are held until it is found: the
    # app's background workers use the pool too, and a released one could go round again.
    async with contextlib.AsyncExitStack() as held:
        for _ in range(pool.get_max_size()):
            con = await held.enter_async_context(pool.acquire(timeout=30))
            assert not con.is_in_transaction()
            if con.get_server_pid() == pid:
                assert await con.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
                break
        else:
            pytest.fail("the released connection was not handed out again")


_MIGRATE_TO = """
import asyncio, sys
from tortoise.migrations.api import migrate
from pixelwand.db import tortoise_config
asyncio.run(migrate(config=tortoise_config(sys.argv[1]), target=sys.argv[2]))
"""


def _args(statement: tuple[str, list[object]]) -> list[object]:
    sql, values = statement
    return [sql, *values]


def _migrate(url: str, target: str | None = None) -> None:
    args = [sys.executable, "-c", _MIGRATE_TO, url, target] if target else None
    if args is None:  # to the newest, as an operator does
        args = [str(Path(sys.executable).parent / "pixelwand"), "migrate"]
    env = {**os.environ, "PIXELWAND_DATABASE_URL": url}
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_upgrade_with_the_largest_rows_the_contract_allows(app):
    """A database written before migration 0005 may hold rows whose names and tags no
    B-tree entry can take: upgrading it to the newest schema must work, and listings must
    find those rows by tag."""
    import asyncpg

    from tests.conftest import POSTGRES_ADMIN_URL, fresh_database

    rng = random.Random(3)
    big = lambda n: "".join(chr(rng.randrange(0x20000, 0x2A6D6)) for _ in range(n))  # noqa: E731
    tags = [big(64) for _ in range(50)]
    async with fresh_database(POSTGRES_ADMIN_URL, "pixelwand_upgrade") as url:
        _migrate(url, "models.0004_asset_generations")
        con = await asyncpg.connect(url)
        try:
            await con.execute(
                "INSERT INTO organizations (id, name, plan, created_at)"
                " VALUES ('c000000000000000000000org', 'old', 'ENTERPRISE', now())"
            )
            await con.execute(
                "INSERT INTO assets (id, organization_id, name, original_name, size, mime_type,"
                " media_type, storage_key, tags, location_x, location_y, uploaded_at)"
                " VALUES ('c00000000000000000000asst', 'c000000000000000000000org', $1, $2, 1,"
                " 'image/jpeg', 'IMAGE', 'orgs/c000000000000000000000org/x.jpg', $3::jsonb,"
                " 0, 0, now())",
                big(255),
                big(255),
                orjson.dumps(tags).decode(),
            )
            _migrate(url)
            stored = await con.fetchval("SELECT tag_bits FROM assets")
            assert stored == tag_bits(tuple(tags))
            where = Where(None, None, None, (tags[9], tags[41]))
            rows = await con.fetch(
                *_args(page_sql("postgres", "c000000000000000000000org", where, 50, 0))
            )
            assert [r["id"] for r in rows] == ["c00000000000000000000asst"]
        finally:
            await con.close()
