"""API-key management: every field here needs the admin scope."""

from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import api_keys
from schema.api_keys.types import ApiKey, CreatedApiKey
from schema.context import require_scope


async def create_api_key(
    info: strawberry.Info,
    scopes: Annotated[list[str], strawberry.argument(description="read, write and/or admin.")],
    name: Annotated[str, strawberry.argument(description="A label.")] = "",
) -> CreatedApiKey:
    principal = require_scope(info, "admin")
    record, plain = await api_keys.create_key(principal.org_id, scopes, name)
    return CreatedApiKey(api_key=record, key=plain)  # type: ignore[arg-type]


async def revoke_api_key(
    info: strawberry.Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The key's id.")],
) -> ApiKey:
    principal = require_scope(info, "admin")
    record = await api_keys.revoke_key(principal.org_id, id)
    info.context.runtime.authenticator.forget_all()
    return record  # type: ignore[return-value]


@strawberry.type
class ApiKeyQueries:
    @strawberry.field(description="Every API key of the workspace (admin scope).")
    async def api_keys(self, info: strawberry.Info) -> list[ApiKey]:
        principal = require_scope(info, "admin")
        return await api_keys.list_keys(principal.org_id)  # type: ignore[return-value]


@strawberry.type
class ApiKeyMutations:
    create_api_key = strawberry.mutation(
        resolver=create_api_key, description="Create a key (admin scope); shown once."
    )
    revoke_api_key = strawberry.mutation(
        resolver=revoke_api_key,
        description="Revoke a key (admin scope); refused everywhere within a second.",
    )
