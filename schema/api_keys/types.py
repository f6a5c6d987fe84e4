from __future__ import annotations

import datetime as dt

import strawberry


@strawberry.type(description="An API key of the workspace (the secret itself is never shown).")
class ApiKey:
    id: strawberry.ID = strawberry.field(description="cuid-style id.")
    name: str = strawberry.field(description="A label.")
    prefix: str = strawberry.field(description="The key's first characters, to recognise it.")
    scopes: list[str] = strawberry.field(description="read, write and/or admin.")
    created_at: dt.datetime = strawberry.field(description="When it was created.")
    revoked_at: dt.datetime | None = strawberry.field(description="When it was revoked.")


@strawberry.type(description="A new key: the plain key is shown here once and never again.")
class CreatedApiKey:
    api_key: ApiKey = strawberry.field(description="The key's record.")
    key: str = strawberry.field(description="The secret: ak_live_… Store it now.")
