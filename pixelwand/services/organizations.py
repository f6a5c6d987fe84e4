"""Organizations (workspaces) and their plans."""

from __future__ import annotations

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
