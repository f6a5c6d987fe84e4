"""Organizations (workspaces) and their plans."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from pixelwand.errors import BadRequest, NotFound
from pixelwand.models import Organization
from pixelwand.plans import Plan


async def create_org(name: str, plan: Plan) -> Organization:
    if not name.strip():
        raise BadRequest("name must not be empty")
    return await Organization.create(name=name.strip(), plan=plan.value)


async def set_plan(org_id: str, plan: Plan) -> None:
    if not await Organization.filter(id=org_id).update(plan=plan.value):
        raise NotFound(f"organization {org_id} not found")


async def has_any() -> bool:
    return await Organization.all().exists()


@contextlib.asynccontextmanager
async def locked(org_id: str) -> AsyncIterator[BaseDBAsyncClient]:
    """A transaction in which only this request reads and changes what the organization
    counts (its storage use, its webhooks): a check such as "does it fit" or "is there
    room for one more" and the write that uses it are one step.

    PostgreSQL: a row lock on the organization (SELECT ... FOR UPDATE) until commit.
    SQLite: the transaction's first statement is a write, which takes the database's write
    lock at once (what BEGIN IMMEDIATE does), so another process cannot write meanwhile;
    within one process Tortoise runs one SQLite transaction at a time anyway.
    """
    async with in_transaction() as db:
        if db.capabilities.dialect == "postgres":
            await db.execute_query(
                "SELECT id FROM organizations WHERE id = $1 FOR UPDATE", [org_id]
            )
        else:
            await db.execute_query("UPDATE organizations SET plan = plan WHERE id = ?", [org_id])
        yield db
