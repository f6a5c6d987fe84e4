"""Webhook endpoints: every field here needs the admin scope."""

from __future__ import annotations

from typing import Annotated

import strawberry

from pixelwand.services import webhooks
from schema.context import require_scope
from schema.webhooks.types import (
    CreatedWebhook,
    CreateWebhookInput,
    DeleteWebhookResult,
    UpdateWebhookInput,
    Webhook,
    WebhookDelivery,
    WebhookTestResult,
)

_ID = Annotated[strawberry.ID, strawberry.argument(description="The endpoint's id.")]


def _allow_private(info: strawberry.Info) -> bool:
    return info.context.runtime.settings.webhook_allow_private


async def create_webhook(
    info: strawberry.Info,
    input: Annotated[CreateWebhookInput, strawberry.argument(description="The endpoint.")],
) -> CreatedWebhook:
    principal = require_scope(info, "admin")
    record, secret = await webhooks.create_endpoint(
        principal.org_id,
        url=input.url,
        events=input.events,
        enabled=input.enabled,
        allow_private=_allow_private(info),
    )
    return CreatedWebhook(webhook=record, secret=secret)  # type: ignore[arg-type]


async def update_webhook(
    info: strawberry.Info,
    id: _ID,
    input: Annotated[UpdateWebhookInput, strawberry.argument(description="The changes.")],
) -> Webhook:
    principal = require_scope(info, "admin")
    return await webhooks.update_endpoint(  # type: ignore[return-value]
        principal.org_id,
        id,
        url=input.url,
        events=input.events,
        enabled=input.enabled,
        allow_private=_allow_private(info),
    )


async def delete_webhook(info: strawberry.Info, id: _ID) -> DeleteWebhookResult:
    principal = require_scope(info, "admin")
    deleted = await webhooks.delete_endpoint(principal.org_id, id)
    return DeleteWebhookResult(id=strawberry.ID(deleted), deleted=True)


async def send_test_webhook(info: strawberry.Info, id: _ID) -> WebhookTestResult:
    principal = require_scope(info, "admin")
    event_id = await webhooks.send_test_event(principal.org_id, id)
    return WebhookTestResult(webhook_id=id, event_id=event_id, type=webhooks.TEST_EVENT)


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="The workspace's webhook endpoints (admin scope).")
    async def webhooks(self, info: strawberry.Info) -> list[Webhook]:
        principal = require_scope(info, "admin")
        return await webhooks.list_endpoints(principal.org_id)  # type: ignore[return-value]

    @strawberry.field(description="An endpoint's latest deliveries, newest first (admin scope).")
    async def webhook_deliveries(
        self, info: strawberry.Info, webhook_id: _ID
    ) -> list[WebhookDelivery]:
        principal = require_scope(info, "admin")
        return await webhooks.list_deliveries(  # type: ignore[return-value]
            principal.org_id, webhook_id
        )


@strawberry.type
class WebhookMutations:
    create_webhook = strawberry.mutation(
        resolver=create_webhook,
        description="Register an endpoint (admin scope); its secret is shown once.",
    )
    update_webhook = strawberry.mutation(
        resolver=update_webhook, description="Change an endpoint's URL, events or state."
    )
    delete_webhook = strawberry.mutation(
        resolver=delete_webhook, description="Remove an endpoint and its pending deliveries."
    )
    send_test_webhook = strawberry.mutation(
        resolver=send_test_webhook,
        description="Queue a webhook.test event for this endpoint (sent once, not retried).",
    )
