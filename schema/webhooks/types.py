"""GraphQL types of webhook endpoints and their deliveries."""

from __future__ import annotations

import datetime as dt

import strawberry


@strawberry.type(description="An endpoint that receives the workspace's events, signed.")
class Webhook:
    id: strawberry.ID = strawberry.field(description="cuid-style id.")
    url: str = strawberry.field(description="Where events are POSTed (http or https).")
    events: list[str] = strawberry.field(
        description="Event types sent here: asset.finalized, asset.updated, asset.deleted, "
        "collection.created, export.completed."
    )
    enabled: bool = strawberry.field(description="Disabled endpoints receive nothing.")
    created_at: dt.datetime = strawberry.field(description="When it was registered.")
    updated_at: dt.datetime = strawberry.field(description="When it last changed.")


@strawberry.type(description="A new endpoint: its signing secret is shown here once.")
class CreatedWebhook:
    webhook: Webhook = strawberry.field(description="The endpoint.")
    secret: str = strawberry.field(
        description="whsec_…: the HMAC-SHA256 key of Pixelwand-Signature. Store it now."
    )


@strawberry.input(description="A webhook endpoint to register.")
class CreateWebhookInput:
    url: str = strawberry.field(description="http(s) URL; private addresses are refused.")
    events: list[str] = strawberry.field(description="Event types to send.")
    enabled: bool | None = strawberry.field(default=None, description="Default true.")


@strawberry.input(description="Changes to an endpoint; omitted fields stay as they are.")
class UpdateWebhookInput:
    url: str | None = strawberry.field(default=None, description="New URL.")
    events: list[str] | None = strawberry.field(default=None, description="New event types.")
    enabled: bool | None = strawberry.field(default=None, description="Enable or disable.")


@strawberry.type(description="The outcome of deleteWebhook.")
class DeleteWebhookResult:
    id: strawberry.ID = strawberry.field(description="The deleted endpoint's id.")
    deleted: bool = strawberry.field(description="Always true.")


@strawberry.type(description="A queued test event.")
class WebhookTestResult:
    webhook_id: strawberry.ID = strawberry.field(description="The endpoint it goes to.")
    event_id: str = strawberry.field(description="evt_…; see the endpoint's deliveries.")
    type: str = strawberry.field(description="Always webhook.test.")


@strawberry.type(description="One event sent (or being sent) to one endpoint.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="The delivery's id.")
    event_id: str = strawberry.field(description="evt_…, also the Pixelwand-Event-Id header.")
    event_type: str = strawberry.field(description="The event's type.")
    status: str = strawberry.field(description="pending, succeeded, failed or skipped.")
    attempts: int = strawberry.field(description="Attempts made so far.")
    response_status: int | None = strawberry.field(
        description="The HTTP status of the last attempt's answer, if any."
    )
    latency_ms: float | None = strawberry.field(description="The last attempt's duration.")
    error: str | None = strawberry.field(description="Why the last attempt failed.")
    created_at: dt.datetime = strawberry.field(description="When the event happened.")
    last_attempt_at: dt.datetime | None = strawberry.field(description="The last attempt.")
    next_attempt_at: dt.datetime | None = strawberry.field(
        description="When a pending delivery is tried next."
    )
    delivered_at: dt.datetime | None = strawberry.field(description="When it succeeded.")
