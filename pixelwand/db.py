"""Database connection: the Tortoise configuration and its lifecycle."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE

# asyncpg settings added to a PostgreSQL URL that does not set them itself (whatever the
# URL's query string says wins, e.g. `postgres://.../db?command_timeout=60`). asyncpg's own
# defaults let a hung database hold requests forever; these bound every wait, so an outage
# costs a request a few seconds and a 503 `database unavailable`, never a hang:
_ASYNCPG_DEFAULTS = {
    # Seconds to open a connection (asyncpg: 60). A refused connection fails at once
    # anyway; this bounds a server that accepts TCP connections but never answers.
    "timeout": "5",
    # Seconds per statement (asyncpg: unbounded). Without it a hung server or a silently
    # dropped TCP connection keeps the request and its pool connection forever - even an
    # outer asyncio timeout does not help, because releasing the connection waits for the
    # cancellation of the query, and that needs the server too. asyncpg bounds that
    # cancellation by this same value, so the worst case is about twice this (measured:
    # 20 s with these defaults, against forever without). The API's statements are short,
    # indexed lookups; an operator with slower ones raises it in the URL. Migrations run
    # without it (a long CREATE INDEX must not be cut off).
    "command_timeout": "10",
    # Seconds an idle pooled connection is kept (asyncpg: 300): connections a firewall or a
    # failover dropped without a word are replaced sooner.
    "max_inactive_connection_lifetime": "60",
}
_ASYNCPG_SCHEMES = ("postgres", "postgresql", "asyncpg")


def with_connection_defaults(database_url: str, *, statement_timeout: bool = True) -> str:
    """`database_url` with the bounded asyncpg defaults above for whatever it leaves unset."""
    parts = urlsplit(database_url)
    if parts.scheme not in _ASYNCPG_SCHEMES:
        return database_url
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = {name for name, _ in query}
    for name, value in _ASYNCPG_DEFAULTS.items():
        if name in given or (name == "command_timeout" and not statement_timeout):
            continue
        query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


# Set on every connection the service opens (operators' own sessions keep the server's
# defaults; index builds use max_parallel_maintenance_workers, which this leaves alone).
_SESSION_SETTINGS = {
    # No parallel workers: the API's statements read a page, and starting workers costs
    # more than that. With 2 workers the planner picked a Gather Merge for a rare tag's
    # listing page (newest-first scan of ~3,000 index entries): 12-17 ms against 1-3 ms
    # without (measured on 100,000 assets). Under concurrent requests the cores are busy
    # with other requests anyway.
    "max_parallel_workers_per_gather": "0",
}


async def _release_connection(connection: Any) -> None:
    """What a pooled asyncpg connection needs before its next use: nothing, unless a
    transaction was left open.

    asyncpg's default runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
    ALL;` on every release, and Tortoise acquires and releases a connection for every
    statement outside a transaction: one more round trip per query, ~0.1 ms of database
    and server time each (measured). The service keeps no session state (no SET, advisory
    lock, cursor or LISTEN; configuration goes in `server_settings` at connect time), so
    only a connection still in a transaction — which Tortoise's transactions never leave,
    but a cancelled request might — gets asyncpg's full reset, rollback included.
    """
    if connection.is_in_transaction():
        await connection.reset()


# On SQLite, the large batched reads (`Collection.assets` for many collections) use a
# connection of their own: each aiosqlite connection runs its statements one after another
# on its own thread, so on the one connection every other request's statements queued
# behind the batch's. SQLite's WAL journal (Tortoise's default) lets the two read at once.
# It is kept outside Tortoise's registry (with two registered connections, Tortoise asks
# every transaction to name one). PostgreSQL has a pool: nothing to do there.
_batch_reads: Any = None


def batch_connection() -> Any:
    """The connection for large batched reads (execute_query only): SQLite's own, or the
    default one."""
    from tortoise import connections

    return _batch_reads if _batch_reads is not None else connections.get("default")


async def _open_batch_reads(database_url: str) -> None:
    global _batch_reads
    if not database_url.startswith("sqlite://") or ":memory:" in database_url:
        return
    from tortoise.backends.sqlite.client import SqliteClient

    config = expand_db_url(database_url)
    client = SqliteClient(connection_name="batch_reads", **config["credentials"])
    await _add_functions(client)
    _batch_reads = client


def unicode_upper(text: str | None) -> str | None:
    """Upper case a character at a time, as PostgreSQL's upper() (UTF-8 ctype): SQLite's
    UPPER and LIKE fold ASCII letters only. A character whose upper case is longer (ß, ŉ)
    is kept, as PostgreSQL keeps it."""
    if text is None:
        return None
    return "".join(up if len(up := c.upper()) == 1 else c for c in str(text))


async def _add_functions(client: Any) -> None:
    """SQLite: `pw_upper` (unicode_upper) on the client's connection, for `q` searches."""
    await client.create_connection(with_db=True)
    await client._connection.create_function("pw_upper", 1, unicode_upper, deterministic=True)


def tortoise_config(database_url: str) -> dict[str, Any]:
    connection: str | dict[str, Any] = database_url
    if urlsplit(database_url).scheme in _ASYNCPG_SCHEMES:
        connection = expand_db_url(database_url)
        credentials = connection["credentials"]
        credentials["reset"] = _release_connection
        credentials["server_settings"] = {
            **_SESSION_SETTINGS,
            **credentials.get("server_settings", {}),
        }
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": ["pixelwand.models"],
                "default_connection": "default",
                "migrations": "pixelwand.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def ensure_sqlite_dir(database_url: str) -> None:
    """SQLite creates the file but not its folder; make the folder for the default path."""
    if database_url.startswith("sqlite://") and ":memory:" not in database_url:
        from pathlib import Path

        path = Path(database_url.removeprefix("sqlite://").split("?", 1)[0])
        path.parent.mkdir(parents=True, exist_ok=True)


async def connect(database_url: str) -> None:
    ensure_sqlite_dir(database_url)
    # Tortoise caches prepared INSERT/DELETE statements per connection *name*, not per
    # database dialect: a process that connects to SQLite and later to PostgreSQL (the test
    # suite, which runs on both) would send SQLite placeholders to PostgreSQL.
    EXECUTOR_CACHE.clear()
    # Global fallback: requests run in tasks that did not inherit the lifespan's context
    # (uvicorn), exactly the case Tortoise's own Starlette integration enables it for.
    await Tortoise.init(
        config=tortoise_config(with_connection_defaults(database_url)),
        _enable_global_fallback=True,
    )
    if database_url.startswith("sqlite://"):
        from tortoise import connections

        await _add_functions(connections.get("default"))
    await _open_batch_reads(database_url)


async def migrate(database_url: str) -> None:
    """Apply every pending migration (idempotent)."""
    from tortoise.migrations.api import migrate as run_migrations

    ensure_sqlite_dir(database_url)
    url = with_connection_defaults(database_url, statement_timeout=False)
    await run_migrations(config=tortoise_config(url))


async def disconnect() -> None:
    global _batch_reads
    if _batch_reads is not None:
        client, _batch_reads = _batch_reads, None
        await client.close()
    await Tortoise.close_connections()
