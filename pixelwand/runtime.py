"""The long-lived objects one process shares between requests."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from pixelwand.auth import Authenticator
from pixelwand.config import Settings
from pixelwand.plans import Plan, PlanLimits
from pixelwand.ratelimit import RateLimiter
from pixelwand.storage import Storage

T = TypeVar("T")


@dataclasses.dataclass
class Runtime:
    settings: Settings
    storage: Storage
    authenticator: Authenticator
    limiter: RateLimiter
    image_pool: Any = None  # pixelwand.imaging.pool.ImagePool
    renditions: Any = None  # pixelwand.services.renditions.RenditionService
    exports: Any = None  # pixelwand.services.exports.ExportStreamer
    webhook_worker: Any = None  # pixelwand.services.webhook_delivery.DeliveryWorker
    render_budget: Any = None  # pixelwand.imaging.budget.RenderBudget (made on first use)

    def limits(self, plan: Plan) -> PlanLimits:
        return self.settings.plans[plan]

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound or blocking work off the event loop (the bounded image pool)."""
        if self.image_pool is not None:
            return await self.image_pool.run(fn, *args)
        return await asyncio.to_thread(fn, *args)
