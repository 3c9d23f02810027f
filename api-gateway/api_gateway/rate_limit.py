"""Rate limits per client IP with `limits` (moving window), in memory or in Redis
(`REDIS_URL`, shared by every gateway replica; async, so the event loop never
blocks on it). When Redis is unreachable the request is let through and a
warning logged: an outage of the limiter must not become an outage of the shop."""

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from api_gateway.routing import RateClass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when a request is allowed again / the window frees up

    def headers(self) -> dict[str, str]:
        reset_in = max(0, math.ceil(self.reset_at - time.time()))
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(reset_in),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, reset_in))
        return headers


def make_storage(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    uri = redis_url
    for scheme in ("redis://", "rediss://"):
        if uri.startswith(scheme):
            uri = "async+" + uri
    storage = storage_from_string(uri, implementation="redispy")
    if not isinstance(storage, Storage):
        # Another scheme (memcached://, memory://) names a storage without the async API.
        raise ValueError("REDIS_URL must be a redis:// or rediss:// URL")
    return storage


class RateLimiter:
    def __init__(self, storage: Storage, limits: dict[RateClass, str]) -> None:
        self._strategy = MovingWindowRateLimiter(storage)
        self._items: dict[RateClass, RateLimitItem] = {
            rate_class: parse(value) for rate_class, value in limits.items()
        }
        self._storage = storage

    async def hit(self, rate_class: RateClass, client: str) -> RateLimitResult | None:
        """Counts one request; None when the storage cannot be reached (allowed, unlimited)."""
        item = self._items[rate_class]
        try:
            allowed = await self._strategy.hit(item, rate_class.value, client)
            stats = await self._strategy.get_window_stats(item, rate_class.value, client)
        except Exception as exc:  # Redis down: log, and let the request through
            logger.warning("rate limit storage unavailable: %s", type(exc).__name__)
            return None
        return RateLimitResult(
            allowed=allowed, limit=item.amount, remaining=stats.remaining, reset_at=stats.reset_time
        )

    async def reset(self) -> None:
        await self._storage.reset()
