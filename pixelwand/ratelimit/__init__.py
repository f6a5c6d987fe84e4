"""Per-key rate limiting (GCRA), in-process by default, Redis-backed when configured."""

from pixelwand.ratelimit.base import Decision, RateLimiter
from pixelwand.ratelimit.memory import MemoryRateLimiter

__all__ = ["Decision", "MemoryRateLimiter", "RateLimiter"]
