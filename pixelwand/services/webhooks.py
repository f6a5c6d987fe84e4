"""Webhook endpoints of an organization, and the events recorded for them (the outbox).

`record()` is called inside the transaction of the change it reports: the event's rows
(one per subscribed endpoint, its body rendered once, so every retry sends the same
bytes) commit or roll back with the change, and a process that dies afterwards loses
nothing — the delivery worker (`webhook_delivery.py`) finds the rows wherever it runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from pixelwand.errors import BadRequest, NotFound
from pixelwand.ids import is_valid_id, new_id
from pixelwand.models import Asset, WebhookDelivery, WebhookEndpoint
from pixelwand.services import organizations
from pixelwand.services.records import ASSET_COLUMNS, AssetRecord, FocalPoint, utcnow_ms
from pixelwand.services.rows import decode_asset
from pixelwand.services.webhook_urls import check_destination, parse_url

EVENT_TYPES = (
    "asset.finalized",
    "asset.updated",
    "asset.deleted",
    "collection.created",
    "export.completed",
)
TEST_EVENT = "webhook.test"
MAX_ENDPOINTS = 25
DELIVERIES_SHOWN = 50

_wakeups: list[Any] = []  # asyncio.Event of this process's delivery workers


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookRecord:
    id: str
    url: str
    events: list[str]
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    response_status: int | None
    latency_ms: float | None
    error: str | None
    created_at: dt.datetime
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


def _record(row: WebhookEndpoint) -> WebhookRecord:
    return WebhookRecord(
        row.id, row.url, list(row.events), row.enabled, row.created_at, row.updated_at
    )


def _events(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise BadRequest("events must be a non-empty list of event types")
    out: list[str] = []
    for item in value:
        if item not in EVENT_TYPES:
            raise BadRequest(
                f"events: unknown event type {item!r} (one of {', '.join(EVENT_TYPES)})"
            )
        if item not in out:
            out.append(item)
    return out


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# --- endpoints ----------------------------------------------------------------------------


async def create_endpoint(
    org_id: str, *, url: object, events: object, enabled: bool | None, allow_private: bool
) -> tuple[WebhookRecord, str]:
    """(endpoint, secret). The secret is answered here once."""

    parse_url(url)
    kinds = _events(events)
    await check_destination(str(url), allow_private=allow_private)
    now = utcnow_ms()
    secret = new_secret()
    # The count and the insert are one step: concurrent creates never pass the limit.
    async with organizations.locked(org_id):
        if await WebhookEndpoint.filter(organization_id=org_id).count() >= MAX_ENDPOINTS:
            raise BadRequest(f"an organization may have at most {MAX_ENDPOINTS} webhooks")
        row = await WebhookEndpoint.create(
            organization_id=org_id,
            url=str(url),
            events=kinds,
            secret=secret,
            enabled=True if enabled is None else bool(enabled),
            created_at=now,
            updated_at=now,
        )
    return _record(row), secret


async def _owned(org_id: str, endpoint_id: str) -> WebhookEndpoint:
    # A malformed id is not found, as for every other id: the database is never asked
    # (past the column's 25 characters Tortoise raises, and PostgreSQL refuses a NUL).
    if not is_valid_id(endpoint_id):
        raise NotFound(f"webhook {endpoint_id} not found")
    row = await WebhookEndpoint.filter(id=endpoint_id, organization_id=org_id).first()
    if row is None:
        raise NotFound(f"webhook {endpoint_id} not found")
    return row


async def list_endpoints(org_id: str) -> list[WebhookRecord]:
    rows = await WebhookEndpoint.filter(organization_id=org_id).order_by("created_at", "id")
    return [_record(r) for r in rows]


async def update_endpoint(
    org_id: str,
    endpoint_id: str,
    *,
    url: object = None,
    events: object = None,
    enabled: bool | None = None,
    allow_private: bool,
) -> WebhookRecord:
    """Change the given fields (None leaves a field as it is)."""
    changes: dict[str, Any] = {}
    if url is not None:
        parse_url(url)
        changes["url"] = str(url)
    if events is not None:
        changes["events"] = _events(events)
    if enabled is not None:
        changes["enabled"] = bool(enabled)
    row = await _owned(org_id, endpoint_id)
    if "url" in changes:
        await check_destination(changes["url"], allow_private=allow_private)
    if changes:
        changes["updated_at"] = utcnow_ms()
        await WebhookEndpoint.filter(id=row.id).update(**changes)
        row = await _owned(org_id, endpoint_id)
    return _record(row)


async def delete_endpoint(org_id: str, endpoint_id: str) -> str:
    """Remove an endpoint and its undelivered events."""
    row = await _owned(org_id, endpoint_id)
    await row.delete()
    return endpoint_id


async def list_deliveries(org_id: str, endpoint_id: str) -> list[DeliveryRecord]:
    """The endpoint's latest deliveries, newest first."""
    await _owned(org_id, endpoint_id)
    rows = (
        await WebhookDelivery.filter(endpoint_id=endpoint_id)
        .order_by("-created_at", "-id")
        .limit(DELIVERIES_SHOWN)
    )
    return [
        DeliveryRecord(
            r.id,
            r.event_id,
            r.event_type,
            r.status,
            r.attempts,
            r.response_status,
            r.latency_ms,
            r.error,
            r.created_at,
            r.last_attempt_at,
            r.next_attempt_at if r.status == "pending" else None,
            r.delivered_at,
        )
        for r in rows
    ]


async def send_test_event(org_id: str, endpoint_id: str) -> str:
    """Queue a `webhook.test` event for this endpoint alone (enabled or not); its id."""
    row = await _owned(org_id, endpoint_id)
    event_id = await _insert(org_id, TEST_EVENT, {"webhookId": row.id}, [row.id])
    wake_workers()
    return event_id


# --- events ---------------------------------------------------------------------------------


def new_event_id() -> str:
    return "evt_" + new_id()


def api_time(value: dt.datetime) -> str:
    """The API's rendering of an instant: ISO-8601 UTC with milliseconds and Z."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def asset_data(record: AssetRecord) -> dict[str, Any]:
    """An asset as the API answers it (camelCase, instants as the API writes them)."""
    out: dict[str, Any] = {}
    value: Any
    for field, value in zip(AssetRecord._fields, record, strict=True):
        if field == "organization_id":
            continue
        if isinstance(value, dt.datetime):
            value = api_time(value)
        elif isinstance(value, FocalPoint):
            value = value._asdict()
        out[_camel(field)] = value
    return out


async def asset_snapshot(asset_id: str) -> dict[str, Any]:
    """The asset as it is now, read on the caller's connection (inside its transaction)."""
    rows = await Asset.filter(id=asset_id).values_list(*ASSET_COLUMNS)
    return asset_data(decode_asset(rows[0]))


def collection_data(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "parentId": row.parent_id,
        "color": row.color,
        "createdAt": api_time(row.created_at),
    }


EventData = dict[str, Any] | Callable[[], Awaitable[dict[str, Any]]]


async def record(org_id: str, event_type: str, data: EventData) -> str | None:
    """Add an event for every enabled endpoint of the organization that subscribed to it.

    Call inside the transaction of the change; call `wake_workers()` after it commits.
    `data` may be a coroutine function, called only when some endpoint wants the event.
    Answers the event id, or None when no endpoint wanted it (nothing is written)."""
    rows = await WebhookEndpoint.filter(organization_id=org_id, enabled=True).values_list(
        "id", "events"
    )
    targets = [endpoint_id for endpoint_id, events in rows if event_type in events]
    if not targets:
        return None
    payload = data if isinstance(data, dict) else await data()
    return await _insert(org_id, event_type, payload, targets)


async def _insert(
    org_id: str, event_type: str, data: dict[str, Any], endpoint_ids: Iterable[str]
) -> str:
    event_id = new_event_id()
    now = utcnow_ms()
    body = orjson.dumps(
        {"id": event_id, "type": event_type, "createdAt": api_time(now), "data": data}
    ).decode()
    await WebhookDelivery.bulk_create(
        [
            WebhookDelivery(
                organization_id=org_id,
                endpoint_id=endpoint_id,
                event_id=event_id,
                event_type=event_type,
                body=body,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint_id in endpoint_ids
        ]
    )
    return event_id


def wake_workers() -> None:
    """Tell this process's delivery workers that new events are committed."""
    for event in _wakeups:
        event.set()


def register_wakeup(event: Any) -> None:
    _wakeups.append(event)


def unregister_wakeup(event: Any) -> None:
    if event in _wakeups:
        _wakeups.remove(event)
