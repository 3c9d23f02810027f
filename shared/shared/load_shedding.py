"""Bounded concurrency: beyond what a process can serve well, a fast 503 rather than a queue
without end.

Without a bound, a flash sale queues every request: each waits longer than the client will,
and the work done for those that gave up is wasted. With one, at most `limit` requests are
worked on at once and at most `queue` more wait for a slot (in arrival order); a request
arriving beyond that, or one that waited `max_wait` seconds, is answered at once with
`503 {"error": ...}` and `Retry-After`, so that most customers are served fast and the
rest are told to try again in a second.

`ConcurrencyLimiter` is the bound; `ConcurrencyLimitMiddleware` applies it, before the
request is logged or handled: a service has one for every request but the probes and the
metrics scrape, the gateway one per service it forwards to (api_gateway/load_limits.py).
"""

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager

from starlette.types import ASGIApp, Receive, Scope, Send

from shared import metrics
from shared.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1
REFUSED = metrics.counter(
    "http_requests_refused_total",
    "Requests refused under overload (503 with Retry-After), by bound: `service` for a "
    "service's own, the upstream's name at the gateway",
    ["bound"],
)
# A refusal is logged at most this often (seconds): under overload there are thousands.
_LOG_EVERY = 10.0


class Overloaded(ServiceUnavailable):
    """Too many requests in flight and waiting: try again in a moment."""

    message = "Service busy, please retry shortly"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class ConcurrencyLimiter:
    """At most `limit` holders of a slot at once, at most `queue` waiting for one (first
    come, first served), none waiting longer than `max_wait` seconds."""

    def __init__(
        self,
        limit: int,
        queue: int,
        max_wait: float,
        *,
        name: str = "service",
        refusal: str = Overloaded.message,
    ) -> None:
        if limit < 1 or queue < 0 or max_wait <= 0:
            raise ValueError("limit >= 1, queue >= 0 and max_wait > 0 are required")
        self.limit = limit
        self.queue = queue
        self.max_wait = max_wait
        self.name = name  # the metric's `bound` label
        self.refusal = refusal  # the error message of a refusal
        self.in_flight = 0
        self.refused = 0  # since the start, for the metrics and the logs
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._last_log = 0.0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Holds a slot for the block; `Overloaded` when none can be had in time."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def acquire(self) -> None:
        """Takes a slot (pair it with `release`), waiting in line when all are taken;
        `Overloaded` when the line is full or the wait too long."""
        if self.in_flight < self.limit and not self._waiting:
            self.in_flight += 1
            return
        if len(self._waiting) >= self.queue:
            self._refuse("queue full")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait):
                # A releasing holder hands its slot over: in_flight already counts us.
                await waiter
        except BaseException as exc:  # the wait timed out, or the request was cancelled
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot in the same instant: pass it on
            else:
                waiter.cancel()
                # A release since the cancellation may have dropped it already (it skips
                # the done ones).
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
            if isinstance(exc, TimeoutError):
                self._refuse("waited too long")
            raise

    def release(self) -> None:
        """Gives a slot back: to the first in line, or to the pool."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on; in_flight is unchanged
                return
        self.in_flight -= 1

    def _refuse(self, reason: str) -> None:
        self.refused += 1
        REFUSED.labels(bound=self.name).inc()
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY:
            self._last_log = now
            logger.warning(
                "overloaded: refusing requests",
                extra={
                    "bound": self.name,
                    "reason": reason,
                    "in_flight": self.in_flight,
                    "waiting": len(self._waiting),
                    "refused_total": self.refused,
                },
            )
        raise Overloaded(self.refusal)


# Which bound a request is under (None: none), given its ASGI scope.
LimiterFor = Callable[[Scope], "ConcurrencyLimiter | None"]


def one_limiter(limiter: ConcurrencyLimiter, exempt_paths: Collection[str] = ()) -> LimiterFor:
    """A service's: one bound for every request but `exempt_paths` (the probes: a busy
    service is not a dead one)."""
    exempt = frozenset(exempt_paths)

    def limiter_for(scope: Scope) -> ConcurrencyLimiter | None:
        return None if scope["path"] in exempt else limiter

    return limiter_for


class ConcurrencyLimitMiddleware:
    """Pure ASGI, ahead of the request's logging and handling: a refused request costs a
    few microseconds and no log line (a counter, and one warning every few seconds, say
    how many)."""

    def __init__(self, app: ASGIApp, *, limiter_for: LimiterFor) -> None:
        self.app = app
        self.limiter_for = limiter_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.limiter_for(scope) if scope["type"] == "http" else None
        if limiter is None:
            await self.app(scope, receive, send)
            return
        try:
            await limiter.acquire()
        except Overloaded as refused:
            await _send_refusal(send, refused)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            limiter.release()


async def _send_refusal(send: Send, refused: Overloaded) -> None:
    body = json.dumps(refused.body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refused.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
