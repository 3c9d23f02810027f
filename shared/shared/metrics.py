"""Prometheus metrics: `GET /metrics` on every service (wired by `create_app`).

What every service gets without writing anything:
- `http_requests_total{method, route, status}`: requests answered, by route
  *template* (`/api/orders/{order_id}`, never the raw path: one series per
  route, not one per order);
- `http_request_duration_seconds{method, route}`: latency histogram;
- `http_requests_in_progress`: requests being served now;
- `db_pool_size`, `db_pool_checked_out`, `db_pool_idle`, `db_pool_overflow`:
  the database connection pool, read at scrape time;
- the client library's process metrics (CPU, memory, open files, GC).

Domain figures are declared once, at import time, in the module that moves them:

    from shared import metrics

    ORDERS_CREATED = metrics.counter("orders_created_total", "Orders created")
    PAYMENTS = metrics.counter(
        "payments_total", "Payments settled, by provider and status", ["provider", "status"]
    )
    ...
    ORDERS_CREATED.inc()
    PAYMENTS.labels(provider="mpesa", status="completed").inc()

A change is counted once its transaction has committed, never when it rolls back:
`after_commit(session, PAYMENTS.labels(provider="mpesa", status="completed").inc)`
(shared.db) inside the transaction runs the increment when (and only if) it commits.

A figure that needs a query (the outbox backlog, the age of its oldest row) is a
gauge set by a scrape hook: `create_app(metrics_hooks=[hook])`, where
`async def hook(state)` (given the service's state, shared.state) sets the gauge;
hooks run before each scrape, each within a few seconds, and one that fails is
logged and leaves its gauge as it was.
`outbox_hook(OutboxMessage)` is that hook for a service's outbox.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Match
from starlette.types import Scope

if TYPE_CHECKING:
    from shared.outbox import OutboxMessageMixin
    from shared.state import DatabaseState

logger = logging.getLogger(__name__)

# Given the service's state (shared.state); sets gauges before a scrape.
MetricsHook = Callable[[Any], Awaitable[None]]
SCRAPE_HOOK_TIMEOUT = 5.0
# Latency buckets (seconds): from a cached read to a slow payment provider.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"

_declared: dict[str, MetricWrapperBase] = {}
MetricT = TypeVar("MetricT", bound=MetricWrapperBase)


def _declare(
    kind: type[MetricT],
    name: str,
    documentation: str,
    labels: Sequence[str],
    **kwargs: Any,
) -> MetricT:
    """One metric per name per process: declaring it again (a module imported twice,
    several apps in one test process) returns the same object; declaring the same name
    with another type or other labels is a mistake and raises."""
    label_names = tuple(labels)
    existing = _declared.get(name)
    if existing is not None:
        if type(existing) is not kind or tuple(existing._labelnames) != label_names:
            raise ValueError(f"metric {name!r} is already declared with another type or labels")
        return existing
    metric = kind(name, documentation, label_names, **kwargs)
    _declared[name] = metric
    return metric


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
    """A number that only goes up (`orders_created_total`). Name counters `..._total`."""
    return _declare(Counter, name, documentation, labels)


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
    """A number that goes up and down (`outbox_backlog`)."""
    return _declare(Gauge, name, documentation, labels)


def histogram(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    buckets: Sequence[float] = LATENCY_BUCKETS,
) -> Histogram:
    """A distribution (`mpesa_callback_delay_seconds`)."""
    return _declare(Histogram, name, documentation, labels, buckets=tuple(buckets))


HTTP_REQUESTS = counter(
    "http_requests_total",
    "HTTP requests answered, by route template, method and status",
    ["method", "route", "status"],
)
HTTP_DURATION = histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method",
    ["method", "route"],
)
HTTP_IN_PROGRESS = gauge("http_requests_in_progress", "HTTP requests being answered now")
DB_POOL_SIZE = gauge("db_pool_size", "Connections the database pool may keep open")
DB_POOL_CHECKED_OUT = gauge("db_pool_checked_out", "Database connections in use now")
DB_POOL_IDLE = gauge("db_pool_idle", "Open database connections waiting in the pool")
DB_POOL_OVERFLOW = gauge("db_pool_overflow", "Connections open beyond the pool size now")


def outbox_hook(model: "type[OutboxMessageMixin]") -> MetricsHook:
    """The scrape hook of a service with an outbox (`create_app(metrics_hooks=[...])`):
    `outbox_backlog` (messages not yet delivered) and `outbox_oldest_age_seconds` (how
    long the oldest of them has waited; 0 when none). Declared here, not at import, so that
    only services with an outbox show them."""
    backlog = gauge("outbox_backlog", "Outbox messages not yet delivered")
    oldest_age = gauge(
        "outbox_oldest_age_seconds", "Seconds the oldest undelivered outbox message has waited"
    )

    # Here: only a service with an outbox (a database) loads SQLAlchemy.
    from shared import outbox

    async def outbox_figures(state: "DatabaseState[Any]") -> None:
        async with state.sessionmaker() as session:
            count, age = await outbox.backlog(session, model)
        backlog.set(count)
        oldest_age.set(age)

    return outbox_figures


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def read_samples(exposition: str) -> Samples:
    """{(sample name, labels): value} of what `/metrics` answered: for tests and tools
    that compare two scrapes (`sample(after, ...) - sample(before, ...)`)."""
    return {
        (item.name, frozenset(item.labels.items())): item.value
        for family in text_string_to_metric_families(exposition)
        for item in family.samples
    }


def sample(samples: Samples | str, name: str, **labels: str) -> float:
    """One sample's value (0 when absent, as a counter not yet moved)."""
    if isinstance(samples, str):
        samples = read_samples(samples)
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a sample changed from one scrape to the next."""
    return sample(after, name, **labels) - sample(before, name, **labels)


def route_template(scope: Scope) -> str:
    """The matched route's template, never the raw path (its ids would make a series
    per order)."""
    route = scope.get("route")
    if route is None and scope.get("endpoint") is not None:
        # FastAPI records its own routes in the scope, not plain Starlette ones (the
        # gateway's proxy): find which of the routes with that endpoint matched.
        router = scope.get("router")
        for candidate in getattr(router, "routes", ()):
            same_endpoint = getattr(candidate, "endpoint", None) is scope["endpoint"]
            if same_endpoint and candidate.matches(scope)[0] is Match.FULL:
                route = candidate
                break
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template or UNMATCHED_ROUTE


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in _KNOWN_METHODS else "OTHER"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def _observe_pool(state: object) -> None:
    engine = getattr(state, "engine", None)
    if engine is None:
        return
    pool = engine.sync_engine.pool
    # QueuePool (the default) knows these; NullPool (tests, migrations) does not.
    if hasattr(pool, "checkedout"):
        DB_POOL_SIZE.set(pool.size())
        DB_POOL_CHECKED_OUT.set(pool.checkedout())
        DB_POOL_IDLE.set(pool.checkedin())
        # overflow() counts up from -size as connections open; only the excess matters.
        DB_POOL_OVERFLOW.set(max(0, pool.overflow()))


async def _run_hook(hook: MetricsHook, state: object) -> None:
    try:
        async with asyncio.timeout(SCRAPE_HOOK_TIMEOUT):
            await hook(state)
    except Exception:
        logger.exception(
            "metrics hook failed", extra={"hook": getattr(hook, "__qualname__", repr(hook))}
        )


def metrics_router(
    state_of: Callable[[Request], object], hooks: Sequence[MetricsHook] = ()
) -> APIRouter:
    """`state_of` gives the service's state (shared.state, which imports this module)."""
    router = APIRouter(tags=["health"])

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        state = state_of(request)
        _observe_pool(state)
        if hooks:
            await asyncio.gather(*(_run_hook(hook, state) for hook in hooks))
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
