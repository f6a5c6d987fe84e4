"""The database layer's own promises on PostgreSQL: the tag signature and pooled sessions."""

from __future__ import annotations

import random

import orjson
import pytest
from tortoise import connections

from pixelwand.services.listing_sql import tag_bits

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
    for _ in range(pool.get_max_size()):  # the same connection comes back clean
        async with pool.acquire() as con:
            assert not con.is_in_transaction()
            if con.get_server_pid() == pid:
                assert await con.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
                break
    else:
        pytest.fail("the released connection was not handed out again")
