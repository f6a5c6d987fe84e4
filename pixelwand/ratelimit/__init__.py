"""Per-key rate limiting (GCRA), in-process by default, Redis-backed when configured."""

from pixelwand.ratelimit.base import Decision, RateLimiter
from pixelwand.ratelimit.memory import MemoryRateLimiter

__all__ = ["Decision", "MemoryRateLimiter", "RateLimiter", "rate_limiter_from_url"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def rate_limiter_from_url(url: str | None) -> RateLimiter:
    """None or "" → in-process; redis://, rediss:// or unix:// → shared through Redis."""
    if not url:
        return MemoryRateLimiter()
    if url.startswith(_REDIS_SCHEMES):
        # Imported here: redis-py takes ~0.1 s to import, a cost the default setup skips.
        from pixelwand.ratelimit.redis import RedisRateLimiter

        return RedisRateLimiter(url)
    raise ValueError(
        f"unsupported rate limit URL {url.split('://', 1)[0]!r}: "
        "use redis://HOST:PORT/DB, rediss://… or unix://PATH, or leave it empty for in-process"
    )
