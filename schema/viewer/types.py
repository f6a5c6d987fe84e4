from __future__ import annotations

import strawberry

from pixelwand.services import uploads
from schema.context import require_scope
from schema.scalars import Long


@strawberry.type(description="A workspace.")
class Organization:
    id: strawberry.ID = strawberry.field(description="cuid-style id.")
    name: str = strawberry.field(description="Display name.")


@strawberry.type(description="The caller: its workspace, plan, scopes and usage.")
class Viewer:
    organization: Organization = strawberry.field(description="The key's workspace.")
    plan: str = strawberry.field(description="FREE, TEAM, BUSINESS or ENTERPRISE.")
    scopes: list[str] = strawberry.field(description="The key's scopes.")
    rate_limit_per_second: float = strawberry.field(description="The plan's requests/second.")
    storage_quota: Long = strawberry.field(description="The plan's storage quota in bytes.")

    @strawberry.field(
        description="Bytes used: live assets plus uploads presigned in the last 15 minutes."
    )
    async def storage_used(self, info: strawberry.Info) -> Long:
        return Long(await uploads.storage_used(info.context.principal.org_id))


@strawberry.type
class ViewerQueries:
    @strawberry.field(description="Who the API key acts for.")
    def viewer(self, info: strawberry.Info) -> Viewer:
        principal = require_scope(info, "read")
        limits = info.context.runtime.limits(principal.plan)
        return Viewer(
            organization=Organization(id=strawberry.ID(principal.org_id), name=principal.org_name),
            plan=principal.plan.value,
            scopes=[s for s in ("read", "write", "admin") if principal.has(s)],
            rate_limit_per_second=limits.rps,
            storage_quota=Long(limits.storage_quota_bytes),
        )
