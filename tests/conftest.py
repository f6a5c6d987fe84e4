"""Fixtures: one app per backend pair, fresh organizations and keys per test.

Tests are black-box: they talk HTTP to the ASGI app through httpx, and only reach into
the database to set up organizations and keys (what the CLI does for an operator).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixelwand.config import Settings
from pixelwand.plans import Plan

BASE_URL = "http://testserver"
BUSINESS_QUOTA = 50_000


@dataclasses.dataclass
class Backend:
    name: str
    database_url: str
    storage_url: str


def _sqlite_local(tmp: Path) -> Backend:
    return Backend("sqlite-local", f"sqlite://{tmp}/pixelwand.db", f"local:{tmp}/storage")


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
        **overrides,
    }
    return Settings.from_env(env)


@pytest.fixture(scope="session", params=["sqlite-local"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    tmp = tmp_path_factory.mktemp(request.param)
    return _sqlite_local(tmp)


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
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
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
