"""Database connection: the Tortoise configuration and its lifecycle."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
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
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def migrate(database_url: str) -> None:
    """Apply every pending migration (idempotent)."""
    from tortoise.migrations.api import migrate as run_migrations

    ensure_sqlite_dir(database_url)
    await run_migrations(config=tortoise_config(database_url))


async def disconnect() -> None:
    await Tortoise.close_connections()
