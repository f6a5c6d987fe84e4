"""The webhook delivery worker: sends the outbox's events, signed, at least once.

Every app process runs one. A delivery is claimed with a lease (a conditional update of
its row, so on any number of processes one holds it at a time; the lease outlasts the
longest attempt), sent, and then marked succeeded, rescheduled with exponential backoff
and jitter, or failed after MAX_ATTEMPTS (about a day). A process killed mid-attempt
leaves a lease that expires; the event is then sent again, with the same event id
(receivers deduplicate on `Pixelwand-Event-Id`). Endpoints are called with a bounded
timeout, no redirects, a capped response read and a bounded number of deliveries at
once, on the worker's own tasks: a slow or failing endpoint never holds up a request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import logging
import random
import time
import uuid
from typing import Any

import httpx
from tortoise.expressions import Q

from pixelwand import metrics
from pixelwand.config import Settings
from pixelwand.errors import BadRequest
from pixelwand.models import WebhookDelivery, WebhookEndpoint
from pixelwand.services import webhooks
from pixelwand.services.webhook_urls import check_destination, pinned

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 14  # with a 30 s base: retries over ~26 h (docs/webhooks.md has the table)
BACKOFF_CAP_FACTOR = 720  # the longest wait: 720 x base (6 h with a 30 s base)
CONCURRENCY = 16
# At most this many attempts to one endpoint at once (per process), so that one hanging
# endpoint's backlog holds a quarter of the slots, never all: the others' events go on.
PER_ENDPOINT = 4
RESPONSE_READ_LIMIT = 4096
USER_AGENT = "PixelWand-Webhooks/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Pixelwand-Signature` header: Stripe's scheme, HMAC-SHA256 over `<t>.<body>`."""
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff_seconds(attempts: int, base: float, rng: random.Random | None = None) -> float:
    """The wait after the `attempts`-th failed attempt: doubling, capped, ±20% jitter."""
    wait = min(base * 2 ** (attempts - 1), base * BACKOFF_CAP_FACTOR)
    return wait * (rng or random).uniform(0.8, 1.2)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _lease_free(now: dt.datetime) -> Q:
    return Q(lease_until=None) | Q(lease_until__lt=now)


class DeliveryWorker:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.owner = uuid.uuid4().hex
        # An attempt (name lookup and request) is cut off after the timeout plus a second;
        # the lease outlasts that with room to record the outcome, so no second process
        # takes a delivery over while its attempt may still be running.
        self.lease_seconds = 2 * settings.webhook_timeout_seconds + 10
        self.wakeup = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.in_flight: collections.Counter[str] = collections.Counter()  # by endpoint
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(settings.webhook_timeout_seconds),
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    async def run(self) -> None:
        webhooks.register_wakeup(self.wakeup)
        try:
            while True:
                try:
                    started = await self.dispatch_due()
                except Exception:  # the database may be down: try again next round
                    log.exception("webhook dispatch failed")
                    started = 0
                if not started:
                    self.wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self.wakeup.wait(), self.settings.webhook_poll_seconds
                        )
        finally:
            webhooks.unregister_wakeup(self.wakeup)
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.client.aclose()

    async def dispatch_due(self) -> int:
        """Claim what is due, up to the free slots, and start sending it; how many."""
        free = CONCURRENCY - len(self.tasks)
        if free <= 0:
            return 0
        claimed = await self._claim(free)
        for delivery_id, endpoint_id in claimed:
            self.in_flight[endpoint_id] += 1
            task = asyncio.create_task(self._deliver(delivery_id))
            self.tasks.add(task)
            task.add_done_callback(functools.partial(self._finished, endpoint_id))
        return len(claimed)

    def _finished(self, endpoint_id: str, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.in_flight[endpoint_id] -= 1
        if self.in_flight[endpoint_id] <= 0:
            del self.in_flight[endpoint_id]
        self.wakeup.set()  # a slot is free: look for more

    async def _claim(self, limit: int) -> list[tuple[str, str]]:
        """(delivery id, endpoint id) of up to `limit` due deliveries, leased to this
        worker, skipping endpoints that already have PER_ENDPOINT attempts running here."""
        now = _now()
        busy = [e for e, n in self.in_flight.items() if n >= PER_ENDPOINT]
        query = WebhookDelivery.filter(status="pending", next_attempt_at__lte=now).filter(
            _lease_free(now)
        )
        if busy:
            query = query.exclude(endpoint_id__in=busy)
        candidates = (
            await query.order_by("next_attempt_at").limit(limit).values_list("id", "endpoint_id")
        )
        lease = now + dt.timedelta(seconds=self.lease_seconds)
        won: list[tuple[str, str]] = []
        taking = collections.Counter(self.in_flight)
        for delivery_id, endpoint_id in candidates:
            endpoint = str(endpoint_id)
            if taking[endpoint] >= PER_ENDPOINT:
                continue  # the next round skips this endpoint in the query
            taken = (
                await WebhookDelivery.filter(id=delivery_id, status="pending")
                .filter(_lease_free(now))
                .update(lease_owner=self.owner, lease_until=lease)
            )
            if taken:
                taking[endpoint] += 1
                won.append((str(delivery_id), endpoint))
        return won

    async def _deliver(self, delivery_id: str) -> None:
        try:
            row = await WebhookDelivery.get_or_none(id=delivery_id, lease_owner=self.owner)
            if row is None:
                return
            endpoint = await WebhookEndpoint.get_or_none(id=row.endpoint_id)
            if endpoint is None:
                return
            if not endpoint.enabled and row.event_type != webhooks.TEST_EVENT:
                await self._settle(row, "skipped", error="endpoint disabled")
                return
            outcome = await self._attempt(row, endpoint)
            await self._record_attempt(row, *outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", delivery_id)

    async def _attempt(
        self, row: WebhookDelivery, endpoint: WebhookEndpoint
    ) -> tuple[bool, int | None, float | None, str | None]:
        """(succeeded, response status, latency in ms, error)."""
        body = row.body.encode()
        headers = {
            "Content-Type": "application/json",
            "Pixelwand-Event-Id": row.event_id,
            "Pixelwand-Event-Type": row.event_type,
            "Pixelwand-Delivery-Attempt": str(row.attempts + 1),
            "Pixelwand-Signature": sign(endpoint.secret, int(time.time()), body),
        }
        allow_private = self.settings.webhook_allow_private
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_seconds + 1):
                address = await check_destination(endpoint.url, allow_private=allow_private)
                url, host, extensions = pinned(endpoint.url, address)
                started = time.perf_counter()
                async with self.client.stream(
                    "POST", url, content=body, headers=headers | host, extensions=extensions
                ) as response:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= RESPONSE_READ_LIMIT:
                            break
        except BadRequest as exc:
            return False, None, None, exc.message
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            latency = (time.perf_counter() - started) * 1000
            return False, None, latency, _describe(exc)
        except Exception as exc:  # whatever else stops an attempt is its outcome
            # (a URL the client refuses, a malformed answer): recorded and retried like any
            # failure, never left leased to be taken over and fail again for ever.
            return False, None, None, _describe(exc)
        latency = (time.perf_counter() - started) * 1000
        status = response.status_code
        if 200 <= status < 300:
            return True, status, latency, None
        if 300 <= status < 400:
            return False, status, latency, f"redirect ({status}) not followed"
        return False, status, latency, f"endpoint answered {status}"

    async def _record_attempt(
        self,
        row: WebhookDelivery,
        succeeded: bool,
        status: int | None,
        latency: float | None,
        error: str | None,
    ) -> None:
        attempts = row.attempts + 1
        now = _now()
        fields: dict[str, Any] = {
            "attempts": attempts,
            "response_status": status,
            "latency_ms": None if latency is None else round(latency, 1),
            "error": error[:300] if error else None,
            "last_attempt_at": now,
            "lease_owner": None,
            "lease_until": None,
        }
        if succeeded:
            fields.update(status="succeeded", delivered_at=now)
            outcome = "succeeded"
        elif attempts >= MAX_ATTEMPTS or row.event_type == webhooks.TEST_EVENT:
            fields["status"] = "failed"
            outcome = "failed"
        else:
            wait = backoff_seconds(attempts, self.settings.webhook_retry_base_seconds)
            fields["next_attempt_at"] = now + dt.timedelta(seconds=wait)
            outcome = "retried"
        await WebhookDelivery.filter(id=row.id, lease_owner=self.owner).update(**fields)
        metrics.webhook_deliveries.labels(outcome).inc()

    async def _settle(self, row: WebhookDelivery, status: str, *, error: str) -> None:
        await WebhookDelivery.filter(id=row.id, lease_owner=self.owner).update(
            status=status, error=error, lease_owner=None, lease_until=None
        )
        metrics.webhook_deliveries.labels(status).inc()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    return f"{type(exc).__name__}: {exc}"[:300]
